package oidc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Errors a Verify can return, wrapped with detail.
var (
	ErrMalformed    = errors.New("malformed token")
	ErrSignature    = errors.New("incorrect token signature")
	ErrExpired      = errors.New("token expired")
	ErrNotYetValid  = errors.New("token not yet valid")
	ErrUnreachable  = errors.New("could not retrieve the issuer's keys")
	errUnsupportedA = errors.New("unsupported signing algorithm")
)

// Claims are the verified token's claims that STS uses; Raw has them all.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	AMR       []string
	Expiry    time.Time
	NotBefore time.Time
	IssuedAt  time.Time
	Raw       map[string]any
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// token is a JWS compact serialisation, split and decoded, not verified.
type token struct {
	header  header
	claims  Claims
	signed  string // header.payload, what the signature covers
	sig     []byte
	rawBody []byte
}

// UnverifiedIssuer returns the token's iss without verifying anything,
// to find the provider whose keys verify it.
func UnverifiedIssuer(raw string) (string, error) {
	t, err := parse(raw)
	if err != nil {
		return "", err
	}
	return t.claims.Issuer, nil
}

func parse(raw string) (*token, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	var t token
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &t.header) != nil {
		return nil, fmt.Errorf("%w: bad header", ErrMalformed)
	}
	if t.rawBody, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
		return nil, fmt.Errorf("%w: bad payload encoding", ErrMalformed)
	}
	if t.sig, err = base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, fmt.Errorf("%w: bad signature encoding", ErrMalformed)
	}
	if err := t.decodeClaims(); err != nil {
		return nil, err
	}
	t.signed = parts[0] + "." + parts[1]
	return &t, nil
}

func (t *token) decodeClaims() error {
	dec := json.NewDecoder(strings.NewReader(string(t.rawBody)))
	dec.UseNumber()
	if err := dec.Decode(&t.claims.Raw); err != nil {
		return fmt.Errorf("%w: payload is not a JSON object", ErrMalformed)
	}
	c, raw := &t.claims, t.claims.Raw
	c.Issuer, _ = raw["iss"].(string)
	c.Subject, _ = raw["sub"].(string)
	c.Audience = stringOrList(raw["aud"])
	c.AMR = stringOrList(raw["amr"])
	var ok bool
	if c.Expiry, ok = numericDate(raw["exp"]); !ok {
		return fmt.Errorf("%w: no valid exp claim", ErrMalformed)
	}
	c.NotBefore, _ = numericDate(raw["nbf"])
	c.IssuedAt, _ = numericDate(raw["iat"])
	if c.Issuer == "" {
		return fmt.Errorf("%w: no iss claim", ErrMalformed)
	}
	return nil
}

func stringOrList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// verifySignature checks the signature with key (an *rsa.PublicKey or *ecdsa.PublicKey).
func (t *token) verifySignature(key crypto.PublicKey) error {
	sum := sha256.Sum256([]byte(t.signed))
	switch t.header.Alg {
	case "RS256":
		k, ok := key.(*rsa.PublicKey)
		if !ok || rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], t.sig) != nil {
			return ErrSignature
		}
	case "ES256":
		k, ok := key.(*ecdsa.PublicKey)
		if !ok || len(t.sig) != 64 {
			return ErrSignature
		}
		r, s := new(big.Int).SetBytes(t.sig[:32]), new(big.Int).SetBytes(t.sig[32:])
		if !ecdsa.Verify(k, sum[:], r, s) {
			return ErrSignature
		}
	default:
		return fmt.Errorf("%w %q", errUnsupportedA, t.header.Alg)
	}
	return nil
}
