package localcluster_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// copyExecutable copies the program src to dst (a new path, as `go run` builds into): a copy,
// not a link, so that the copy's own path is the one it finds its siblings by.
func copyExecutable(t *testing.T, src, dst string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
	}
	if err == nil {
		err = os.WriteFile(dst, data, 0o755)
	}
	if err != nil {
		t.Fatalf("copying %s to %s: %v", src, dst, err)
	}
	return dst
}

// clusterPrograms are the programs of a local cluster's daemons.
var clusterPrograms = []string{"podsg-vpc", "podsg-controller", "podsg-agent", "containerd", "kubelet",
	"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"}

// TestLocalDownByAnotherPodsg is the reported sequence: `make demo` with up's binaries in one
// directory, then `podsg local down` by a podsg built into another directory (as `go run
// ./cmd/podsg` is), in a plain shell, where no podsg-vpc lies beside it.
//
// First with up's podsg-vpc gone too, so that one step of down (the VPC's cleanup) fails: every
// daemon must still stop, and down must name each process, namespace and link left and fail,
// keeping the state dir. Then, with podsg-vpc back, the same podsg finishes, and `bin/podsg
// local down` after it finds nothing: no process naming the state dir, no namespace, link, mount
// or nftables table is left.
func TestLocalDownByAnotherPodsg(t *testing.T) {
	testenv.RequireRoot(t)
	o := localcluster.Options{Nodes: 1, KubeBinDir: testenv.KubeBinDir(t), BinDir: buildAll(t), StateDir: varLibStateDir(t)}
	binPodsg := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg") // beside up's binaries, as in bin/
	otherPodsg := copyExecutable(t, binPodsg, filepath.Join(t.TempDir(), "go-build", "exe", "podsg"))
	vpcBin := filepath.Join(o.BinDir, "podsg-vpc")
	nft := nftTables(t)
	t.Cleanup(func() {
		_ = os.Rename(vpcBin+".away", vpcBin)
		if _, err := os.Stat(o.StateDir); err == nil { // the test stopped before its last down
			if err := localcluster.Down(context.WithoutCancel(t.Context()), localcluster.Options{StateDir: o.StateDir}, testWriter{t}); err != nil {
				t.Errorf("podsg local down: %v", err)
			}
		}
		teardown(t, o, nft)
	})
	if _, err := localcluster.Demo(t.Context(), o, testWriter{t}); err != nil {
		t.Fatal(err)
	}

	if err := os.Rename(vpcBin, vpcBin+".away"); err != nil {
		t.Fatal(err)
	}
	out, code := runPodsg(t, otherPodsg, "local", "down", "--state-dir", o.StateDir)
	if code == 0 {
		t.Error("down succeeded although podsg-vpc cleanup could not run")
	}
	for _, prog := range clusterPrograms {
		if pids := programPIDs(t, prog, o.StateDir); len(pids) > 0 {
			t.Errorf("%s still runs after down (pids %v)", prog, pids)
		}
	}
	for _, pid := range pidsNaming(t, o.StateDir) {
		if !strings.Contains(out, fmt.Sprintf("  process %d: ", pid)) {
			t.Errorf("down did not say that pid %d (%s) is left", pid, cmdline(pid))
		}
	}
	left := netnsWithPrefix(t, o.StateDir)
	if len(left) == 0 {
		t.Error("no namespace left although podsg-vpc cleanup did not run")
	}
	for _, ns := range left {
		if !strings.Contains(out, "  network namespace "+ns+"\n") {
			t.Errorf("down did not say that namespace %s is left", ns)
		}
	}
	if _, err := os.Stat(o.StateDir); err != nil {
		t.Fatalf("state dir gone after a failed down: %v", err)
	}

	if err := os.Rename(vpcBin+".away", vpcBin); err != nil {
		t.Fatal(err)
	}
	if _, code := runPodsg(t, otherPodsg, "local", "down", "--state-dir", o.StateDir); code != 0 {
		t.Errorf("second down exited %d", code)
	}
	expectNothingLeft(t, o.StateDir, nft)
	out, code = runPodsg(t, binPodsg, "local", "down", "--state-dir", o.StateDir)
	if code != 0 || !strings.Contains(out, "no local cluster at "+o.StateDir) {
		t.Errorf("bin/podsg local down after it: exit %d", code)
	}
}

// varLibStateDir is a state dir under a new directory in /var/lib: PostgreSQL runs as user
// postgres and must traverse it. The directory goes at the end if down left it empty.
func varLibStateDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/var/lib", "pe2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil { // MkdirTemp makes it 0700
		t.Fatal(err)
	}
	// Never RemoveAll: after a failed down, mounts may remain below.
	t.Cleanup(func() { _ = os.Remove(dir) })
	return filepath.Join(dir, "local")
}

// runPodsg runs a podsg binary as from a plain shell (no KUBEBUILDER_ASSETS).
func runPodsg(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, testenv.AssetsEnv+"=") })
	out, err := cmd.CombinedOutput()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	t.Logf("%s %s: exit %d\n%s", bin, strings.Join(args, " "), code, out)
	return string(out), code
}

// downAtCleanup ends the test with `podsg local down` given only the state dir, as a plain
// shell gets it (no --kube-bin-dir, no KUBEBUILDER_ASSETS: the binaries are the ones up
// recorded), then teardown's last resort.
func downAtCleanup(t *testing.T, o localcluster.Options) {
	t.Helper()
	nft := nftTables(t)
	t.Cleanup(func() {
		if err := localcluster.Down(context.WithoutCancel(t.Context()), localcluster.Options{StateDir: o.StateDir}, testWriter{t}); err != nil {
			t.Errorf("podsg local down: %v", err)
		}
		teardown(t, o, nft)
	})
}

// teardown ends an e2e test after its downs: the acceptance check, then, if anything is left,
// the last resort, so that even a failing down (the code before a fix) leaves the machine
// clean: SIGKILL every process naming the state dir, up's podsg-vpc cleanup (which needs no
// state dir), and down again if the state dir is still there.
func teardown(t *testing.T, o localcluster.Options, nftBefore []string) {
	t.Helper()
	if expectNothingLeft(t, o.StateDir, nftBefore) {
		return
	}
	if err := killNaming(o.StateDir); err != nil {
		t.Error(err)
	}
	cleanup := exec.Command(filepath.Join(o.BinDir, "podsg-vpc"), "cleanup", "--state-dir", filepath.Join(o.StateDir, "vpc"))
	if out, err := cleanup.CombinedOutput(); err != nil {
		t.Errorf("podsg-vpc cleanup: %v\n%s", err, out)
	}
	if _, err := os.Stat(o.StateDir); err == nil {
		if err := localcluster.Down(context.WithoutCancel(t.Context()), localcluster.Options{StateDir: o.StateDir, BinDir: o.BinDir, KubeBinDir: o.KubeBinDir}, testWriter{t}); err != nil {
			t.Errorf("podsg local down after killing what named %s: %v", o.StateDir, err)
		}
	}
	t.Log("after the last resort:")
	expectNothingLeft(t, o.StateDir, nftBefore)
}

// expectNothingLeft is the acceptance check of down, against the real state dir: no process
// whose command line names it, no namespace, root link or mount of its local VPC, no new
// nftables table, and no state dir. It reports whether all is clean.
func expectNothingLeft(t *testing.T, stateDir string, nftBefore []string) bool {
	t.Helper()
	clean := true
	left := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format+" left", args...)
		clean = false
	}
	for _, pid := range pidsNaming(t, stateDir) {
		left("process %d (%s)", pid, cmdline(pid))
	}
	for _, ns := range netnsWithPrefix(t, stateDir) {
		left("network namespace %s", ns)
	}
	links, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		t.Fatalf("ip link: %v", err)
	}
	linkPrefix := topo.Names{ID: topo.IDFromStateDir(filepath.Join(stateDir, "vpc"))}.RootLinkPrefix()
	for _, line := range strings.Split(string(links), "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], linkPrefix) {
			left("link %s", strings.TrimSuffix(f[1], ":"))
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mounts), "\n") {
		if strings.Contains(line, stateDir) || strings.Contains(line, "/run/netns/"+netnsPrefix(stateDir)) {
			left("mount (%s)", line)
		}
	}
	for _, table := range nftTables(t) {
		if !slices.Contains(nftBefore, table) {
			left("nftables %s", table)
		}
	}
	if _, err := os.Stat(stateDir); !errors.Is(err, os.ErrNotExist) {
		left("state dir %s (%v)", stateDir, err)
	}
	return clean
}

func netnsPrefix(stateDir string) string {
	return topo.NamePrefix + topo.IDFromStateDir(filepath.Join(stateDir, "vpc")) + "-"
}

// netnsWithPrefix lists the local VPC's namespaces as `ip netns list` shows them.
func netnsWithPrefix(t *testing.T, stateDir string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], netnsPrefix(stateDir)) {
			names = append(names, f[0])
		}
	}
	return names
}

// nftTables lists the root namespace's nftables tables, e.g. "table inet filter".
func nftTables(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list tables: %v\n%s", err, out)
	}
	var tables []string
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			tables = append(tables, line)
		}
	}
	return tables
}

// pidsNaming lists the processes, other than this test, whose command line contains dir.
func pidsNaming(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	for _, pid := range allPIDs(t) {
		if pid != os.Getpid() && strings.Contains(cmdline(pid), dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// programPIDs lists the processes of a program whose command line contains dir.
func programPIDs(t *testing.T, program, dir string) []int {
	t.Helper()
	var pids []int
	for _, pid := range pidsNaming(t, dir) {
		if argv := strings.Fields(cmdline(pid)); len(argv) > 0 && filepath.Base(argv[0]) == program {
			pids = append(pids, pid)
		}
	}
	return pids
}

func allPIDs(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cmdline is a process's command line with spaces between the arguments; "" once it is gone.
func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}
