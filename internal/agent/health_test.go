package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/testenv"
)

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	return request(t, http.MethodGet, url)
}

func request(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// readiness is a ready func whose answer the test sets.
type readiness struct {
	mu  sync.Mutex
	err error
}

func (r *readiness) set(err error) { r.mu.Lock(); r.err = err; r.mu.Unlock() }
func (r *readiness) check() error  { r.mu.Lock(); defer r.mu.Unlock(); return r.err }

// TestHealthHandler: liveness holds while readiness reports why the agent is not ready, then
// flips; /metrics exposes what is registered with the gatherer.
func TestHealthHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	events := prometheus.NewCounter(prometheus.CounterOpts{Name: "podsg_test_events_total", Help: "Test events."})
	reg.MustRegister(events)
	events.Add(3)
	var r readiness
	r.set(errors.New("pod IP pool not filled yet"))
	srv := httptest.NewServer(healthHandler(reg, r.check))
	t.Cleanup(srv.Close)

	if code, body := get(t, srv.URL+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz while not ready = %d %q, want 200 ok", code, body)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusServiceUnavailable || body != "pod IP pool not filled yet" {
		t.Errorf("/readyz while not ready = %d %q, want 503 with the error", code, body)
	}
	r.set(nil)
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/readyz when ready = %d %q, want 200 ok", code, body)
	}
	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, "\npodsg_test_events_total 3\n") {
		t.Errorf("/metrics = %d, lacks podsg_test_events_total 3:\n%s", code, body)
	}
	if code, _ := request(t, http.MethodPost, srv.URL+"/readyz"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /readyz = %d, want 405", code)
	}
}

func TestHealthHandlerNilReadyIsReady(t *testing.T) {
	srv := httptest.NewServer(healthHandler(prometheus.NewRegistry(), nil))
	t.Cleanup(srv.Close)
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/readyz with nil ready = %d %q, want 200 ok", code, body)
	}
}

// TestServeHealth runs the real listener on a kernel-chosen loopback port, learns the port
// from the log line the agent writes, probes it, and stops it through the context.
func TestServeHealth(t *testing.T) {
	addrs := make(chan string, 1)
	log := funcr.NewJSON(func(obj string) {
		var line struct{ Addr string }
		if json.Unmarshal([]byte(obj), &line) == nil && line.Addr != "" {
			addrs <- line.Addr
		}
	}, funcr.Options{})
	ctx, cancel := context.WithCancel(logr.NewContext(t.Context(), log))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- serveHealth(ctx, "127.0.0.1:0", prometheus.NewRegistry(), nil) }()

	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("serveHealth returned before serving: %v", err)
	case <-time.After(testenv.EventuallyTimeout):
		t.Fatal("serveHealth logged no listening address")
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Errorf("/healthz = %d %q, want 200 ok", code, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveHealth after cancel = %v, want nil", err)
		}
	case <-time.After(testenv.EventuallyTimeout):
		t.Fatal("serveHealth did not return after its context ended")
	}
	var d net.Dialer
	if c, err := d.DialContext(t.Context(), "tcp", addr); err == nil {
		_ = c.Close()
		t.Errorf("%s still accepts connections after serveHealth returned", addr)
	}
}

// TestServeHealthPortTaken: a port another process holds is an error that names the address.
func TestServeHealthPortTaken(t *testing.T) {
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	addr := l.Addr().String()
	err = serveHealth(t.Context(), addr, prometheus.NewRegistry(), nil)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("serveHealth on a taken port = %v, want an error naming %s", err, addr)
	}
}

// TestServeHealthContextAlreadyDone: an agent stopped before the server started is a clean
// stop, not a failure.
func TestServeHealthContextAlreadyDone(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := serveHealth(ctx, "127.0.0.1:0", prometheus.NewRegistry(), nil); err != nil {
		t.Fatalf("serveHealth with an ended context = %v, want nil", err)
	}
}
