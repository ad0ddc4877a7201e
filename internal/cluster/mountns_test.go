package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/testenv"
)

// scenarioOnly makes a re-executed test binary run the scenario alone (see
// TestMountNamespace's subtests).
const scenarioOnly = "PODSG_TEST_MOUNTNS_SCENARIO_ONLY"

// TestMountNamespace: a node's private host directories are bind mounts in its own mount
// namespace only: what a process in it writes to the host path lands in the node's state dir
// and not on the host, no mount shows on the host, and releasing the namespace leaves no
// process and no mount behind.
//
// The subtests run the same scenario from a mount namespace of its own, made on one CPU while
// the node's is made on the other: since Linux 6.18 namespace ids are handed out in per-CPU
// batches, and one of the two orders makes the node's namespace "older" than its creator's,
// which the kernel refuses to bind on a file (EINVAL: CI's and hack/fresh-run.sh's case).
func TestMountNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	mountNSScenario(t)
	if os.Getenv(scenarioOnly) != "" {
		return
	}
	if runtime.NumCPU() < 2 {
		t.Log("one CPU: the cross-CPU cases need two")
		return
	}
	for _, cpus := range [][2]int{{0, 1}, {1, 0}} {
		t.Run(fmt.Sprintf("own namespace made on cpu %d, the node's on cpu %d", cpus[0], cpus[1]), func(t *testing.T) {
			// taskset pins unshare (which makes the test's namespace) to one CPU, then the test
			// binary, and so the holder's unshare, to the other.
			cmd := exec.Command("taskset", "-c", fmt.Sprint(cpus[0]),
				"unshare", "--mount", "--propagation=private",
				"taskset", "-c", fmt.Sprint(cpus[1]),
				os.Args[0], "-test.run=^TestMountNamespace$", "-test.v")
			cmd.Env = append(os.Environ(), scenarioOnly+"=1")
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestMountNamespace") {
				t.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
		})
	}
}

func mountNSScenario(t *testing.T) {
	root := t.TempDir()
	hostPath := filepath.Join(root, "host", "run", "podsg")
	n, err := NewNode(NodeOptions{Name: "mnt-test", Netns: "/run/netns/unused", NodeIP: "10.219.1.10", StateDir: filepath.Join(root, "node"),
		KubeletBin: "/bin/true", ExternalCNI: true, PrivateHostDirs: []string{hostPath}, KillWithParent: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		if err := n.releaseMountNS(ctx); err != nil {
			t.Error(err)
		}
	})
	if err := n.ensureMountNS(ctx); err != nil {
		t.Fatal(err)
	}
	holder := n.mountHolder()
	pid, ok := holder.running()
	if !ok {
		t.Fatal("no process holds the node's mount namespace")
	}
	// Again: the namespace exists, nothing changes.
	if err := n.ensureMountNS(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := holder.running(); again != pid {
		t.Errorf("a second ensureMountNS replaced the holder: pid %d, then %d", pid, again)
	}
	if mounts, _ := MountsUnder(root); len(mounts) != 0 {
		t.Errorf("the node's bind mounts show on the host: %v", mounts)
	}
	writeInNode := func() {
		t.Helper()
		d := n.inMountNS(daemon{bin: "/bin/sh", args: []string{"-c", "echo node > " + filepath.Join(hostPath, "agent.sock")}})
		bin, args, err := d.wrapped()
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
		}
		if data, err := os.ReadFile(filepath.Join(n.PrivateDir(hostPath), "agent.sock")); err != nil || string(data) != "node\n" {
			t.Errorf("the node's own directory holds %q (%v), want what the process in its namespace wrote", data, err)
		}
		if _, err := os.Stat(filepath.Join(hostPath, "agent.sock")); !os.IsNotExist(err) {
			t.Errorf("the host's %s got the node's file: %v", hostPath, err)
		}
	}
	writeInNode()

	// A podsg interrupted between starting the holder and binding: the next one replaces it.
	if err := os.Remove(n.mountNSReady()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(n.PrivateDir(hostPath), "agent.sock")); err != nil {
		t.Fatal(err)
	}
	if err := n.ensureMountNS(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := holder.running(); again == pid {
		t.Errorf("the holder of a namespace without its binds (pid %d) was kept", pid)
	}
	writeInNode()

	if err := n.releaseMountNS(ctx); err != nil {
		t.Fatal(err)
	}
	if s := holder.state(); s.Running() {
		t.Errorf("after release, the holder: %v", s)
	}
	d := n.inMountNS(daemon{name: "probe", bin: "/bin/true"})
	if _, _, err := d.wrapped(); err == nil {
		t.Error("a daemon could still be started in the released namespace")
	}
}
