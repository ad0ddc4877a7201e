package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/podsg/podsg/internal/testenv"
)

// TestServerSpeaksHTTP1: a client that would use HTTP/2 (as the apiserver's does) gets
// HTTP/1.1 from podsg's webhook server, and HTTP/2 from controller-runtime's default, which
// the test tells apart.
func TestServerSpeaksHTTP1(t *testing.T) {
	tests := map[string]struct {
		newServer func(crwebhook.Options) crwebhook.Server
		want      string
	}{
		"podsg's server":               {NewServer, "HTTP/1.1"},
		"controller-runtime's default": {crwebhook.NewServer, "HTTP/2.0"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			pem, err := newCert([]string{"127.0.0.1"})
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"tls.crt", "tls.key"} {
				if err := os.WriteFile(filepath.Join(dir, k), pem[k], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			port := testenv.FreePort(t)
			srv := tc.newServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir})
			srv.Register("/proto", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = fmt.Fprint(w, r.Proto)
			}))
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- srv.Start(ctx) }()
			t.Cleanup(func() {
				cancel()
				if err := <-served; err != nil {
					t.Errorf("the webhook server: %v", err)
				}
			})

			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pem["ca.crt"])
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			var got string
			testenv.Eventually(t, 30*time.Second, func(context.Context) error { // until it listens
				resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/proto", port))
				if err != nil {
					return err
				}
				defer func() { _ = resp.Body.Close() }()
				got = resp.Proto
				return nil
			})
			if got != tc.want {
				t.Fatalf("served over %s, want %s", got, tc.want)
			}
		})
	}
}
