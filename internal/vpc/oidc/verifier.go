package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // IAM's OIDC thumbprints are SHA-1 fingerprints of certificates
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// How long a fetched key set is used before it is fetched again, and how
// soon a token signed with an unknown key id may trigger a fetch (an
// issuer rotating its keys).
const (
	keysTTL      = 5 * time.Minute
	refetchAfter = 10 * time.Second
	fetchTimeout = 5 * time.Second
	// nbfLeeway tolerates an issuer whose clock runs a little ahead; the
	// expiry has none.
	nbfLeeway      = time.Minute
	maxDocumentLen = 1 << 20
)

// Verifier verifies tokens; it caches each issuer's keys. The zero value
// is not usable: use NewVerifier.
type Verifier struct {
	now func() time.Time
	// transport is the base for fetches (tests may point it anywhere); TLS
	// trust is added per call from the provider's thumbprints.
	transport *http.Transport

	mu   sync.Mutex
	keys map[string]*keySet // by issuer
}

type keySet struct {
	keys    map[string]crypto.PublicKey // by kid ("" for a key without one)
	fetched time.Time
}

// NewVerifier returns a verifier reading the time from now.
func NewVerifier(now func() time.Time) *Verifier {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // issuers are local: never through a proxy from the environment
	return &Verifier{now: now, transport: tr, keys: map[string]*keySet{}}
}

// Verify checks raw's signature against its issuer's published keys and
// its validity period, and returns its claims. thumbprints are the
// provider's certificate thumbprints (hex SHA-1), trusted for an https
// issuer besides the system roots.
func (v *Verifier) Verify(ctx context.Context, raw string, thumbprints []string) (*Claims, error) {
	t, err := parse(raw)
	if err != nil {
		return nil, err
	}
	if t.header.Alg != "RS256" && t.header.Alg != "ES256" {
		return nil, fmt.Errorf("%w: %w %q", ErrMalformed, errUnsupportedA, t.header.Alg)
	}
	key, err := v.key(ctx, t.claims.Issuer, t.header.Kid, thumbprints)
	if err != nil {
		return nil, err
	}
	if err := t.verifySignature(key); err != nil {
		return nil, err
	}
	now := v.now()
	if !now.Before(t.claims.Expiry) {
		return nil, fmt.Errorf("%w: current date/time %s must be before the expiration date/time %s", ErrExpired,
			now.UTC().Format(time.RFC3339), t.claims.Expiry.UTC().Format(time.RFC3339))
	}
	if !t.claims.NotBefore.IsZero() && now.Add(nbfLeeway).Before(t.claims.NotBefore) {
		return nil, fmt.Errorf("%w: not before %s", ErrNotYetValid, t.claims.NotBefore.UTC().Format(time.RFC3339))
	}
	return &t.claims, nil
}

// key returns the issuer's key with the given id, fetching the key set
// when it is not cached, stale, or lacks the id.
func (v *Verifier) key(ctx context.Context, issuer, kid string, thumbprints []string) (crypto.PublicKey, error) {
	v.mu.Lock()
	ks := v.keys[issuer]
	v.mu.Unlock()
	now := v.now()
	if ks != nil && now.Sub(ks.fetched) < keysTTL {
		if k, ok := ks.lookup(kid); ok {
			return k, nil
		}
		if now.Sub(ks.fetched) < refetchAfter {
			return nil, fmt.Errorf("%w: no key with id %q", ErrSignature, kid)
		}
	}
	keys, err := v.fetch(ctx, issuer, thumbprints)
	if err != nil {
		return nil, err
	}
	ks = &keySet{keys: keys, fetched: now}
	v.mu.Lock()
	v.keys[issuer] = ks
	v.mu.Unlock()
	k, ok := ks.lookup(kid)
	if !ok {
		return nil, fmt.Errorf("%w: no key with id %q", ErrSignature, kid)
	}
	return k, nil
}

func (ks *keySet) lookup(kid string) (crypto.PublicKey, bool) {
	if k, ok := ks.keys[kid]; ok {
		return k, true
	}
	// A token without kid may use the only key there is.
	if kid == "" && len(ks.keys) == 1 {
		for _, k := range ks.keys {
			return k, true
		}
	}
	return nil, false
}

// fetch reads the discovery document and the key set it names.
func (v *Verifier) fetch(ctx context.Context, issuer string, thumbprints []string) (map[string]crypto.PublicKey, error) {
	client := v.client(thumbprints)
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := getJSON(ctx, client, strings.TrimSuffix(issuer, "/")+"/.well-known/openid-configuration", &disc); err != nil {
		return nil, err
	}
	if disc.JWKSURI == "" {
		return nil, fmt.Errorf("%w: the discovery document of %s has no jwks_uri", ErrUnreachable, issuer)
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := getJSON(ctx, client, disc.JWKSURI, &set); err != nil {
		return nil, err
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		if pub, err := k.publicKey(); err == nil {
			keys[k.Kid] = pub
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no usable key at %s", ErrUnreachable, disc.JWKSURI)
	}
	return keys, nil
}

func getJSON(ctx context.Context, client *http.Client, url string, into any) error {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: GET %s: %s", ErrUnreachable, url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentLen))
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", ErrUnreachable, url, err)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("%w: %s is not JSON: %w", ErrUnreachable, url, err)
	}
	return nil
}

// client trusts the system roots and, besides, any chain holding a
// certificate with one of the thumbprints.
func (v *Verifier) client(thumbprints []string) *http.Client {
	tr := v.transport.Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is done below, against roots or thumbprints.
		InsecureSkipVerify: true, //nolint:gosec // replaced by VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyChain(cs, thumbprints)
		},
	}
	return &http.Client{Transport: tr, Timeout: fetchTimeout}
}

func verifyChain(cs tls.ConnectionState, thumbprints []string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no server certificate")
	}
	for _, c := range cs.PeerCertificates {
		sum := sha1.Sum(c.Raw) //nolint:gosec // thumbprints are SHA-1, as IAM defines them
		if slices.ContainsFunc(thumbprints, func(t string) bool { return strings.EqualFold(t, hex.EncodeToString(sum[:])) }) {
			return nil
		}
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{DNSName: cs.ServerName, Intermediates: inter})
	if err != nil {
		return fmt.Errorf("the issuer's certificate is neither trusted nor one of the provider's thumbprints: %w", err)
	}
	return nil
}

// jwk is one JSON Web Key (RSA or P-256 EC).
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

func (k jwk) publicKey() (crypto.PublicKey, error) {
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("key %s is not for signatures", k.Kid)
	}
	b := func(s string) (*big.Int, error) {
		raw, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(raw) == 0 {
			return nil, fmt.Errorf("bad key parameter")
		}
		return new(big.Int).SetBytes(raw), nil
	}
	switch k.Kty {
	case "RSA":
		n, err := b(k.N)
		if err != nil {
			return nil, err
		}
		e, err := b(k.E)
		if err != nil || !e.IsInt64() {
			return nil, fmt.Errorf("bad RSA exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		if k.Crv != "P-256" {
			return nil, fmt.Errorf("unsupported curve %s", k.Crv)
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		y, errY := base64.RawURLEncoding.DecodeString(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return nil, fmt.Errorf("bad EC key coordinates")
		}
		// ParseUncompressedPublicKey also checks that the point is on the curve.
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	}
	return nil, fmt.Errorf("unsupported key type %s", k.Kty)
}
