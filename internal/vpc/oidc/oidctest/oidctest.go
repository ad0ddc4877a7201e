// Package oidctest is an OpenID Connect issuer for tests: an RSA key pair
// and an HTTP server on loopback publishing the discovery document and
// the key set, as a kube-apiserver publishes its service-account issuer.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // IAM thumbprints are SHA-1 fingerprints
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Issuer is a running test issuer.
type Issuer struct {
	// URL is the issuer (iss), http://127.0.0.1:PORT.
	URL string
	// Host is URL without its scheme, as IAM stores a provider.
	Host string
	Key  *rsa.PrivateKey
	Kid  string
	// Thumbprint is the certificate's SHA-1 fingerprint (hex) of a TLS issuer.
	Thumbprint string
	srv        *httptest.Server
}

// Close stops serving: the issuer's keys can no longer be fetched.
func (iss *Issuer) Close() { iss.srv.Close() }

// Start serves an issuer over plain HTTP until the test ends.
func Start(t testing.TB) *Issuer { t.Helper(); return start(t, false) }

// StartTLS serves an issuer over HTTPS with a self-signed certificate;
// Thumbprint is its SHA-1 fingerprint, as IAM's provider thumbprints are.
func StartTLS(t testing.TB) *Issuer { t.Helper(); return start(t, true) }

func start(t testing.TB, useTLS bool) *Issuer {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{Key: key, Kid: "test-key-1"}
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	if useTLS {
		srv.StartTLS()
		sum := sha1.Sum(srv.Certificate().Raw) //nolint:gosec // IAM thumbprints are SHA-1
		iss.Thumbprint = hex.EncodeToString(sum[:])
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	iss.srv = srv
	iss.URL = srv.URL
	iss.Host = strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.URL, "jwks_uri": iss.URL + "/openid/v1/jwks",
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []any{PublicJWK(&key.PublicKey, iss.Kid)}})
	})
	return iss
}

// PublicJWK is the JWK of an RSA public key.
func PublicJWK(pub *rsa.PublicKey, kid string) map[string]string {
	return map[string]string{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

// Claims are the usual claims of a projected ServiceAccount token.
func (iss *Issuer) Claims(sub, aud string, now time.Time, ttl time.Duration) map[string]any {
	return map[string]any{"iss": iss.URL, "sub": sub, "aud": []string{aud},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix()}
}

// Sign returns a compact RS256 JWT of claims with the issuer's key.
func (iss *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return SignWith(t, iss.Key, iss.Kid, claims)
}

// SignWith signs claims with any RSA key under a key id.
func SignWith(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}
