//go:build moto

package conformance

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/internal/testenv"
)

// startMoto runs moto_server on a free loopback port for the test and returns its URL.
func startMoto(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Fatalf("moto_server not found on PATH (make test-moto needs moto's server: pip install 'moto[server]'): %v", err)
	}
	port := testenv.FreePort(t)
	p, err := testenv.StartProcess(t, bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: time.Second}
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("moto_server exited: %w\n%s", p.Err(), p.LogTail())
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/moto-api/", nil)
		if err != nil {
			return false, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		_ = resp.Body.Close()
		return true, nil
	})
	if err != nil {
		t.Fatalf("waiting for moto_server: %v", err)
	}
	return url
}
