package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/podsg/podsg/internal/cluster"
	"github.com/podsg/podsg/internal/testenv"
)

// startPlane brings a control plane up on addr and registers Down.
func startPlane(t *testing.T, addr string) *cluster.ControlPlane {
	t.Helper()
	bin := testenv.KubeBinDir(t)
	p := testenv.FreePorts(t, 5)
	cp, err := cluster.NewControlPlane(cluster.Options{
		StateDir: filepath.Join(t.TempDir(), "plane"), BinDir: bin, APIServerAddress: addr, KillWithParent: true,
		Ports: cluster.Ports{Etcd: p[0], EtcdPeer: p[1], APIServer: p[2], Scheduler: p[3], ControllerManager: p[4]},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := logr.NewContext(t.Context(), testr.New(t))
	t.Cleanup(func() {
		if err := cp.Down(logr.NewContext(context.WithoutCancel(t.Context()), testr.New(t))); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	if err := cp.Up(ctx); err != nil {
		t.Fatal(err)
	}
	return cp
}

func kubectl(t *testing.T, kubeconfig string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(os.Getenv(testenv.AssetsEnv), "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestControlPlaneUpIsIdempotent brings a plane up on loopback, runs Up again (which must keep
// the same processes) and checks the OIDC discovery document IRSA will rely on.
func TestControlPlaneUpIsIdempotent(t *testing.T) {
	cp := startPlane(t, "127.0.0.1")
	pids := func() map[string]string {
		m := map[string]string{}
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(cp.AdminKubeconfig()), "run", "*.pid"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			m[filepath.Base(f)] = string(b)
		}
		return m
	}
	before := pids()
	if len(before) != 4 {
		t.Fatalf("pid files: %v", before)
	}
	if err := cp.Up(t.Context()); err != nil {
		t.Fatalf("second Up: %v", err)
	}
	if after := pids(); !mapsEqual(before, after) {
		t.Errorf("second Up restarted processes: %v -> %v", before, after)
	}
	doc := kubectl(t, cp.AdminKubeconfig(), "get", "--raw", "/.well-known/openid-configuration")
	if !strings.Contains(doc, `"issuer":"`+cp.URL()+`"`) || !strings.Contains(doc, cp.URL()+"/openid/v1/jwks") {
		t.Errorf("discovery document: %s", doc)
	}
	kubectl(t, cp.AdminKubeconfig(), "get", "--raw", "/openid/v1/jwks")
	// The controller manager (with per-controller credentials) creates the default ServiceAccount.
	testenv.Eventually(t, 0, func(context.Context) error {
		out, err := exec.Command(filepath.Join(os.Getenv(testenv.AssetsEnv), "kubectl"), "--kubeconfig="+cp.AdminKubeconfig(),
			"get", "serviceaccount", "default", "-o", "name").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "serviceaccount/default" {
			return fmt.Errorf("default ServiceAccount not there yet: %w: %s", err, out)
		}
		return nil
	})
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
