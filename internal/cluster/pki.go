package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certLifetime is long because a local cluster has no rotation; a year covers any demo.
const certLifetime = 365 * 24 * time.Hour

// certSpec is one leaf certificate signed by the cluster CA.
type certSpec struct {
	name   string // file base name: <name>.crt, <name>.key
	cn     string
	orgs   []string
	ips    []net.IP
	dns    []string
	server bool
	client bool
}

// pki is a directory of PEM files with a self-signed CA. Files that exist are reused, which is
// what makes Up idempotent and lets a restarted control plane keep trusting its nodes.
type pki struct{ dir string }

func (p pki) path(name, ext string) string { return filepath.Join(p.dir, name+"."+ext) }

// CAFile is the cluster CA certificate, trusted by every component.
func (p pki) caFile() string { return p.path("ca", "crt") }

func (p pki) ensureCA() error {
	if exists(p.caFile()) && exists(p.path("ca", "key")) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "podsg-local-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * certLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("signing CA certificate: %w", err)
	}
	return p.write("ca", der, key)
}

// ensure issues the certificate unless it already exists.
func (p pki) ensure(s certSpec) error {
	if exists(p.path(s.name, "crt")) && exists(p.path(s.name, "key")) {
		return nil
	}
	ca, err := tls.LoadX509KeyPair(p.caFile(), p.path("ca", "key"))
	if err != nil {
		return fmt.Errorf("loading CA: %w", err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		return fmt.Errorf("parsing CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating key for %s: %w", s.name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: s.cn, Organization: s.orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		IPAddresses:  s.ips,
		DNSNames:     s.dns,
	}
	if s.server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if s.client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), ca.PrivateKey)
	if err != nil {
		return fmt.Errorf("signing certificate %s: %w", s.name, err)
	}
	return p.write(s.name, der, key)
}

// ensureServiceAccountKey creates the RSA key pair that signs ServiceAccount tokens. RSA
// because IAM's OIDC federation (IRSA, later) verifies RS256 signatures.
func (p pki) ensureServiceAccountKey() error {
	if exists(p.path("sa", "key")) && exists(p.path("sa", "pub")) {
		return nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("generating service-account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("encoding service-account public key: %w", err)
	}
	if err := writePEM(p.path("sa", "pub"), "PUBLIC KEY", pub); err != nil {
		return err
	}
	return writePEM(p.path("sa", "key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
}

func (p pki) write(name string, der []byte, key crypto.Signer) error {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key %s: %w", name, err)
	}
	// The key first: a crash in between leaves no certificate without its key.
	if err := writePEM(p.path(name, "key"), "PRIVATE KEY", keyDER); err != nil {
		return err
	}
	return writePEM(p.path(name, "crt"), "CERTIFICATE", der)
}

func writePEM(path, typ string, der []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(path), err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
