package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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
			port, pem := startServer(t, tc.newServer)
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

// startServer starts a webhook server made by newServer on a free loopback port with a new
// certificate, serving the request's protocol at /proto, until the test ends.
func startServer(t *testing.T, newServer func(crwebhook.Options) crwebhook.Server, tlsOpts ...func(*tls.Config)) (int, map[string][]byte) {
	t.Helper()
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
	srv := newServer(crwebhook.Options{Host: "127.0.0.1", Port: port, CertDir: dir, TLSOpts: tlsOpts})
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
	return port, pem
}

// TestCountHandshakes: a handshake is counted per connection, not per call: three calls on
// one kept-alive connection count one, a call on a second connection one more.
func TestCountHandshakes(t *testing.T) {
	reg := prometheus.NewRegistry()
	count, err := CountHandshakes(reg)
	if err != nil {
		t.Fatal(err)
	}
	port, pem := startServer(t, NewServer, count)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem["ca.crt"])
	client := func() *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr, Timeout: 10 * time.Second}
	}
	get := func(c *http.Client) error {
		resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/proto", port))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body) // read whole, so the connection is kept for the next
		return resp.Body.Close()
	}
	first := client()
	testenv.Eventually(t, 30*time.Second, func(context.Context) error { return get(first) }) // until it listens
	handshakes := func() float64 {
		mfs, err := reg.Gather()
		if err != nil || len(mfs) != 1 {
			t.Fatalf("gathering: %v, %d families", err, len(mfs))
		}
		return mfs[0].GetMetric()[0].GetCounter().GetValue()
	}
	base := handshakes() // 1, unless the first tries met a listener not yet serving TLS
	for range 2 {
		if err := get(first); err != nil {
			t.Fatal(err)
		}
	}
	if got := handshakes(); got != base {
		t.Errorf("%v handshakes after two more calls on a kept-alive connection, want %v", got, base)
	}
	if err := get(client()); err != nil {
		t.Fatal(err)
	}
	if got := handshakes(); got != base+1 {
		t.Errorf("%v handshakes after a call on a new connection, want %v", got, base+1)
	}
}
