package localcluster

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/oidc"
)

// TestPublishServiceAccountIssuer: on a real apiserver, nobody may read the issuer's discovery
// document before; after, anyone may, and the local STS's verifier, trusting only the
// thumbprint returned, fetches the keys and verifies a token the apiserver issued, as STS
// does for a pod's projected token. Another thumbprint is not trusted.
func TestPublishServiceAccountIssuer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()
	// An anonymous client; only the status code is read, so the certificate is not checked.
	anonymous := func(url string) int {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	discovery := strings.TrimSuffix(env.Config.Host, "/") + "/.well-known/openid-configuration"
	if code := anonymous(discovery); code != http.StatusForbidden {
		t.Fatalf("anonymous GET %s before publishing: %d, want 403", discovery, code)
	}

	iss, err := PublishServiceAccountIssuer(ctx, env.Kubectl, env.Config.CAData)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := PublishServiceAccountIssuer(ctx, env.Kubectl, env.Config.CAData); err != nil || again != iss {
		t.Fatalf("publishing again: %+v, %v; want %+v", again, err, iss)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(env.Config.Host, "/"), "https://")
	if iss.URL != "https://"+host+"/" || iss.Host != host || len(iss.Thumbprint) != 40 {
		t.Fatalf("issuer %+v: want URL https://%s/ (envtest's, with its slash), host %s, a SHA-1 thumbprint", iss, host, host)
	}
	if code := anonymous(discovery); code != http.StatusOK {
		t.Fatalf("anonymous GET %s after publishing: %d, want 200", discovery, code)
	}

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "rds-db-access"}}
	if err := env.Client.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{Audiences: []string{"sts.amazonaws.com"}}}
	if err := env.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatal(err)
	}
	claims, err := oidc.NewVerifier(time.Now).Verify(ctx, tr.Status.Token, []string{iss.Thumbprint})
	if err != nil {
		t.Fatalf("verifying the apiserver's token with thumbprint %s: %v", iss.Thumbprint, err)
	}
	if claims.Subject != "system:serviceaccount:default:rds-db-access" || claims.Issuer != iss.URL {
		t.Fatalf("claims %+v", claims)
	}
	if _, err := oidc.NewVerifier(time.Now).Verify(ctx, tr.Status.Token, []string{strings.Repeat("0", 40)}); err == nil {
		t.Fatal("a token verified with another thumbprint: the issuer's certificate is not one the system trusts")
	}
}
