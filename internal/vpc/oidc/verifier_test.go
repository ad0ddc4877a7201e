package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/vpc/oidc"
	"github.com/podsg/podsg/internal/vpc/oidc/oidctest"
)

func TestVerify(t *testing.T) {
	iss := oidctest.Start(t)
	now := time.Now()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := iss.Claims("system:serviceaccount:default:app", "sts.amazonaws.com", now, time.Hour)
	with := func(k string, v any) map[string]any {
		c := iss.Claims("system:serviceaccount:default:app", "sts.amazonaws.com", now, time.Hour)
		c[k] = v
		return c
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"valid", iss.Sign(t, good), nil},
		{"expired", iss.Sign(t, with("exp", now.Add(-time.Minute).Unix())), oidc.ErrExpired},
		{"not yet valid", iss.Sign(t, with("nbf", now.Add(time.Hour).Unix())), oidc.ErrNotYetValid},
		{"signed by another key", oidctest.SignWith(t, other, iss.Kid, good), oidc.ErrSignature},
		{"unknown key id", oidctest.SignWith(t, iss.Key, "nope", good), oidc.ErrSignature},
		{"payload changed after signing", tamper(iss.Sign(t, good)), oidc.ErrSignature},
		{"issuer that serves nothing", iss.Sign(t, with("iss", "http://127.0.0.1:1")), oidc.ErrUnreachable},
		{"no exp", iss.Sign(t, with("exp", "soon")), oidc.ErrMalformed},
		{"not a JWT", "abc.def", oidc.ErrMalformed},
		{"alg none", "eyJhbGciOiJub25lIn0." + strings.Split(iss.Sign(t, good), ".")[1] + ".", oidc.ErrMalformed},
	}
	v := oidc.NewVerifier(time.Now)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			claims, err := v.Verify(context.Background(), c.token, nil)
			if c.want == nil {
				if err != nil || claims.Subject != "system:serviceaccount:default:app" || claims.Audience[0] != "sts.amazonaws.com" {
					t.Fatalf("Verify = %+v, %v", claims, err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify error = %v, want %v", err, c.want)
			}
		})
	}
}

// tamper changes the payload (sub to another service account) and keeps the old signature.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	p, _ := base64.RawURLEncoding.DecodeString(parts[1])
	p = []byte(strings.Replace(string(p), "default:app", "default:adm", 1))
	parts[1] = base64.RawURLEncoding.EncodeToString(p)
	return strings.Join(parts, ".")
}

// TestVerifyTLSIssuer: a self-signed https issuer is trusted by its
// certificate's thumbprint only.
func TestVerifyTLSIssuer(t *testing.T) {
	iss := oidctest.StartTLS(t)
	tok := iss.Sign(t, iss.Claims("s", "a", time.Now(), time.Hour))
	if _, err := oidc.NewVerifier(time.Now).Verify(context.Background(), tok, []string{strings.ToUpper(iss.Thumbprint)}); err != nil {
		t.Fatalf("with the thumbprint: %v", err)
	}
	_, err := oidc.NewVerifier(time.Now).Verify(context.Background(), tok, []string{strings.Repeat("0", 40)})
	if !errors.Is(err, oidc.ErrUnreachable) {
		t.Fatalf("with another thumbprint: %v, want ErrUnreachable", err)
	}
}
