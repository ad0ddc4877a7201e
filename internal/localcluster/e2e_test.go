package localcluster_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/testenv"
)

// TestSeedTutorial is the end-to-end tier: `podsg local up` with one node and `podsg demo`,
// then `podsg demo metabase` on the same cluster (seed 002's three outcomes, from the pods'
// logs), then `podsg local down`, which must leave nothing behind.
func TestSeedTutorial(t *testing.T) {
	testenv.RequireRoot(t)
	o := localcluster.Options{Nodes: 1, KubeBinDir: testenv.KubeBinDir(t), BinDir: buildAll(t), StateDir: varLibStateDir(t)}
	downAtCleanup(t, o)

	results, err := localcluster.Demo(t.Context(), o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	byPod := map[string]localcluster.DemoResult{}
	for _, r := range results {
		byPod[r.Pod] = r
	}
	withSA, noSA := byPod["postgres-test"], byPod["postgres-test-no-sa"]
	if !strings.HasPrefix(withSA.Log, "('PostgreSQL 15") || withSA.BranchENI == "" {
		t.Errorf("postgres-test printed %q (branch ENI %q), want the server version through a branch ENI", withSA.Log, withSA.BranchENI)
	}
	// Without the ServiceAccount the pod has neither the policy's groups nor the role: its
	// connection times out before the token matters.
	if noSA.Log != "Database connection failed due to timeout expired" || noSA.BranchENI != "" {
		t.Errorf("postgres-test-no-sa printed %q (branch ENI %q), want a timeout on the node's ENI", noSA.Log, noSA.BranchENI)
	}
	if withSA.Node == "" || withSA.Node != noSA.Node {
		t.Errorf("pods ran on %q and %q, want the same node", withSA.Node, noSA.Node)
	}

	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(o.KubeBinDir, "kubectl"), append([]string{"--kubeconfig=" + o.Kubeconfig()}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// Re-running `up` on a running cluster is harmless, and kubectl exec reaches a pod through
	// the kubelet in the instance namespace.
	if err := localcluster.Up(t.Context(), o, testWriter{t}); err != nil {
		t.Fatalf("second podsg local up: %v", err)
	}
	kubectl("run", "shell", "--image=podsg.local/busybox:latest", "--image-pull-policy=IfNotPresent", "--restart=Never", "--command", "--", "sleep", "3600")
	kubectl("wait", "--for=condition=Ready", "pod/shell", "--timeout=120s")
	if out := kubectl("exec", "shell", "--", "echo", "hello from the instance"); strings.TrimSpace(out) != "hello from the instance" {
		t.Errorf("kubectl exec printed %q", out)
	}

	// Seed 002's walk-through in namespace metabase: the two layers fail separately. Without
	// the role annotation the pod, on its branch ENI, signs its token with the node's instance
	// role, found in metadata through the trunk (hop limit 2), which may not connect.
	outcomes, err := localcluster.DemoMetabase(t.Context(), o, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		c        string
		ok       func(string) bool
		want     string
		onBranch bool
	}{
		{localcluster.MetabaseBoth, func(l string) bool { return strings.HasPrefix(l, "('PostgreSQL 15") }, "the server version", true},
		{localcluster.MetabaseNoPolicy, func(l string) bool { return l == "Database connection failed due to timeout expired" }, "a connect timeout", false},
		{localcluster.MetabaseNoRole, func(l string) bool {
			return strings.HasPrefix(l, "Database connection failed due to ") && strings.HasSuffix(l, `FATAL:  PAM authentication failed for user "metabase"`)
		}, "PAM authentication failed", true},
	}
	if len(outcomes) != len(want) {
		t.Fatalf("metabase walk-through: %d outcomes, want %d: %+v", len(outcomes), len(want), outcomes)
	}
	for i, w := range want {
		got := outcomes[i]
		if got.Case != w.c || !w.ok(got.Log) || (got.BranchENI != "") != w.onBranch {
			t.Errorf("metabase, %s: pod %s printed %q (branch ENI %q), want %s (case %q, on a branch ENI: %v)", got.Case, got.Pod, got.Log, got.BranchENI, w.want, w.c, w.onBranch)
		}
	}

	// A role whose trust policy does not name this ServiceAccount (the node's role trusts EC2
	// only): STS refuses the web identity.
	kubectl("annotate", "--overwrite", "serviceaccount", "rds-db-access", "eks.amazonaws.com/role-arn=arn:aws:iam::111122223333:role/podsg-demo-node-role")
	wrongRole, err := localcluster.RerunPod(t.Context(), o, "postgres-test", "rds-db-access")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(wrongRole.Log, "AssumeRoleWithWebIdentity") || !strings.Contains(wrongRole.Log, "AccessDenied") || wrongRole.BranchENI == "" {
		t.Errorf("with a role that does not trust it, postgres-test printed %q (branch ENI %q), want STS's AccessDenied through a branch ENI", wrongRole.Log, wrongRole.BranchENI)
	}
}

// buildAll builds podsg's binaries into one directory, as `make build` does.
func buildAll(t *testing.T) string {
	t.Helper()
	var dir string
	for _, b := range []string{"podsg-vpc", "podsg-controller", "podsg-agent", "podsg-cni", "pgcheck"} {
		dir = filepath.Dir(testenv.Build(t, "github.com/podsg/podsg/cmd/"+b))
	}
	return dir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
