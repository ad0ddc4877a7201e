package cluster

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Paths outside the state dir that containerd 1.6 and the kubelet hard-code. The graceful
// path (CRI removal of every pod) empties them; these helpers remove what a crash leaves.
const (
	shimSocketDir   = "/run/containerd/s"    // containerd-shim-runc-v2's sockets
	cniCacheDir     = "/var/lib/cni/results" // libcni's cached ADD results
	devicePluginDir = "/var/lib/kubelet/device-plugins"
)

// taskIDs lists the node's shim (sandbox) IDs from containerd's state dir, which outlives
// containerd itself, so that a cleanup after a crash still knows them.
func (n *Node) taskIDs() []string {
	entries, _ := os.ReadDir(n.path("containerd", "state", "io.containerd.runtime.v2.task", "k8s.io"))
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

// removeHostLeftovers deletes, for each of the node's tasks, its shim socket (named by
// sha256(containerd address/namespace/id), as containerd 1.6 computes it) and its CNI cache
// files; the kubelet's device-plugin socket unless another kubelet runs; then whichever of
// those directories is left empty.
func (n *Node) removeHostLeftovers(ids []string) error {
	var errs []error
	rm := func(p string) {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s: %w", p, err))
		}
	}
	cache, _ := os.ReadDir(cniCacheDir)
	for _, id := range ids {
		sum := sha256.Sum256([]byte(filepath.Join(n.ContainerdSocket(), "k8s.io", id)))
		rm(filepath.Join(shimSocketDir, fmt.Sprintf("%x", sum)))
		for _, e := range cache {
			if strings.Contains(e.Name(), "-"+id+"-") {
				rm(filepath.Join(cniCacheDir, e.Name()))
			}
		}
	}
	if !otherKubeletRunning(n.opts.KubeletBin) {
		rm(filepath.Join(devicePluginDir, "kubelet.sock"))
	}
	// Parents only go when empty: another node, or a system containerd, may still use them.
	for _, d := range []string{shimSocketDir, "/run/containerd", cniCacheDir, "/var/lib/cni", devicePluginDir, "/var/lib/kubelet"} {
		_ = os.Remove(d)
	}
	return errors.Join(errs...)
}

// otherKubeletRunning reports whether any kubelet runs, wherever its binary lies; this
// node's has been stopped already when it is asked.
func otherKubeletRunning(bin string) bool {
	procs, _ := hostProc.list()
	for _, p := range procs {
		if p.live() && len(p.Argv) > 0 && filepath.Base(p.Argv[0]) == filepath.Base(bin) {
			return true
		}
	}
	return false
}
