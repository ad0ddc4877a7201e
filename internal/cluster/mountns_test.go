package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/podsg/podsg/internal/testenv"
)

// TestMountNamespace: a node's private host directories are bind mounts in its own mount
// namespace only: what a process in it writes to the host path lands in the node's state dir
// and not on the host, and Stop's unmount of the state dir releases the namespace, leaving
// no mount behind.
func TestMountNamespace(t *testing.T) {
	testenv.RequireRoot(t)
	root := t.TempDir()
	hostPath := filepath.Join(root, "host", "run", "podsg")
	n, err := NewNode(NodeOptions{Name: "mnt-test", Netns: "/run/netns/unused", NodeIP: "10.219.1.10", StateDir: filepath.Join(root, "node"),
		KubeletBin: "/bin/true", ExternalCNI: true, PrivateHostDirs: []string{hostPath}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unmountUnder(n.opts.StateDir); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()
	if err := n.ensureMountNS(ctx); err != nil {
		t.Fatal(err)
	}
	if !isNSMount(n.mountNSFile()) {
		t.Fatalf("%s is not a mounted namespace", n.mountNSFile())
	}
	// Again: the namespace exists, nothing changes.
	if err := n.ensureMountNS(ctx); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := MountsUnder(n.opts.StateDir); len(mounts) != 2 {
		t.Errorf("mounts under the state dir after two ensureMountNS: %v, want the mnt dir and its ns file", mounts)
	}
	d := n.inMountNS(daemon{bin: "/bin/sh", args: []string{"-c", "echo node > " + filepath.Join(hostPath, "agent.sock")}})
	bin, args := d.wrapped()
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	if data, err := os.ReadFile(filepath.Join(n.PrivateDir(hostPath), "agent.sock")); err != nil || string(data) != "node\n" {
		t.Errorf("the node's own directory holds %q (%v), want what the process in its namespace wrote", data, err)
	}
	if _, err := os.Stat(filepath.Join(hostPath, "agent.sock")); !os.IsNotExist(err) {
		t.Errorf("the host's %s got the node's file: %v", hostPath, err)
	}
	if err := unmountUnder(n.opts.StateDir); err != nil {
		t.Fatal(err)
	}
	if mounts, _ := MountsUnder(root); len(mounts) != 0 {
		t.Errorf("mounts left after unmounting the state dir: %v", mounts)
	}
}
