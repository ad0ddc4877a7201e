package controller

import (
	"os"
	"path/filepath"
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
