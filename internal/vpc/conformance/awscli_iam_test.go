package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/oidc/oidctest"
)

// TestAWSCLIIAMSTS runs testdata/awscli-iam-sts.sh: awscli creates the OIDC provider, the
// role and its policy in the real podsg-vpc binary (SigV4 verified), exchanges a
// ServiceAccount-shaped token for the role's credentials and uses them. The tokens come from
// a test issuer on loopback (oidctest), whose discovery document and keys podsg-vpc fetches
// as STS fetches an EKS cluster's.
func TestAWSCLIIAMSTS(t *testing.T) {
	testenv.Require(t, testenv.AWSCLI)
	aws, url, p := startSignedVPC(t)

	iss := oidctest.Start(t)
	now := time.Now()
	const sa = "system:serviceaccount:default:rds-db-access"
	tok := func(sub, aud string, ttl time.Duration) string {
		return iss.Sign(t, iss.Claims(sub, aud, now.Add(-time.Hour), ttl+time.Hour))
	}
	cmd := exec.CommandContext(t.Context(), "bash", "testdata/awscli-iam-sts.sh")
	cmd.Env = append(os.Environ(), "ENDPOINT="+url, "ISSUER="+iss.URL, "PATH="+filepath.Dir(aws)+":"+os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret,
		"TOKEN="+tok(sa, "sts.amazonaws.com", time.Hour),
		"TOKEN_EXPIRED="+tok(sa, "sts.amazonaws.com", -time.Minute),
		"TOKEN_OTHER_SA="+tok("system:serviceaccount:default:other", "sts.amazonaws.com", time.Hour),
		"TOKEN_WRONG_AUD="+tok(sa, "kubernetes.default.svc", time.Hour))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("awscli session failed: %v\nserver log:\n%s", err, p.LogTail())
	}
}
