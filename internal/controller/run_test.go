package controller

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestKubeConfigUnlimited: a kubeconfig file (podsg local up runs podsg-controller with one)
// gives a client without client-go's default limit of 5 requests per second.
func TestKubeConfigUnlimited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := kubeConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.QPS >= 0 || cfg.RateLimiter != nil {
		t.Fatalf("QPS %v, rate limiter %v: want no client-side limit", cfg.QPS, cfg.RateLimiter)
	}
}

// TestRunSetsTheMemoryLimit: Run gives the Go runtime the soft limit --memory-limit says
// before it does anything else (here it then fails to reach an apiserver that is not
// there), and refuses a malformed one.
func TestRunSetsTheMemoryLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	const kubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	was := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(was) })

	err := Run(t.Context(), Options{Kubeconfig: path, MemoryLimit: "lots"})
	if err == nil || !strings.Contains(err.Error(), "--memory-limit") {
		t.Fatalf("Run with --memory-limit=lots: %v, want it refused", err)
	}
	if got := debug.SetMemoryLimit(-1); got != was {
		t.Fatalf("a refused --memory-limit set the runtime's limit to %d", got)
	}
	if err := Run(t.Context(), Options{Kubeconfig: path, MemoryLimit: "700Mi"}); err == nil {
		t.Fatal("Run without an apiserver succeeded")
	}
	if got := debug.SetMemoryLimit(-1); got != 700<<20 {
		t.Fatalf("the runtime's soft memory limit is %d, want 700Mi", got)
	}
}
