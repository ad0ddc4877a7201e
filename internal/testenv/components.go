package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// startScheduler runs the real kube-scheduler and waits until its /healthz answers.
func (e *Env) startScheduler(t testing.TB) {
	t.Helper()
	port := FreePort(t)
	e.startComponent(t, "kube-scheduler", port,
		"--kubeconfig="+e.Kubeconfig,
		"--authentication-kubeconfig="+e.Kubeconfig,
		"--authorization-kubeconfig="+e.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
	)
}

// startControllerManager runs the real kube-controller-manager with the apiserver's
// service-account key, so that it can mint ServiceAccount tokens like a real cluster.
func (e *Env) startControllerManager(t testing.TB) {
	t.Helper()
	caFile := filepath.Join(e.dir, "ca.crt")
	if err := os.WriteFile(caFile, e.Config.CAData, 0o600); err != nil {
		t.Fatalf("writing the cluster CA: %v", err)
	}
	port := FreePort(t)
	e.startComponent(t, "kube-controller-manager", port,
		"--kubeconfig="+e.Kubeconfig,
		"--authentication-kubeconfig="+e.Kubeconfig,
		"--authorization-kubeconfig="+e.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+filepath.Join(e.CertDir, "sa-signer.key"),
		"--root-ca-file="+caFile,
		"--controllers=*",
	)
}

func (e *Env) startComponent(t testing.TB, name string, port int, args ...string) {
	t.Helper()
	p, err := StartProcess(t, filepath.Join(e.BinDir, name), args...)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitHealthy(t, port, p); err != nil {
		t.Fatalf("%s did not become healthy: %v\n%s", name, err, p.LogTail())
	}
}

// waitHealthy polls https://127.0.0.1:port/healthz; the components serve it with a self-signed
// certificate and allow it without authentication.
func waitHealthy(t testing.TB, port int, p *Process) error {
	hc := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // loopback, self-signed test component
	}
	url := fmt.Sprintf("https://127.0.0.1:%d/healthz", port)
	return wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("exited: %w", p.Err())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not serving yet: keep polling
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}
