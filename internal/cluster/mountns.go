package cluster

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// The node's mount namespace: on EC2 every instance has its own /opt/cni/bin, /etc/cni/net.d,
// /run/podsg and /var/lib/podsg/pods; on one machine every node would share the host's. An
// in-cluster podsg-agent writes there through its DaemonSet's hostPath volumes (the plugin
// binary, the conflist, its socket, its records), so containerd and the kubelet of a node with
// PrivateHostDirs run in a mount namespace of the node's own in which each of those host paths
// is a bind mount of a directory in the node's state dir. Both must share it: the kubelet
// mounts the pods' volumes (service account tokens) that containerd then binds into the
// containers, and the host's mounts are private here, so nothing would propagate between two
// namespaces.
//
// The namespace is kept by a bind mount of it on a file in the state dir (as `ip netns` keeps
// network namespaces), so that containerd and the kubelet can enter it separately (nsenter)
// and a later podsg finds it. Stop's unmount of everything under the state dir releases it;
// the mounts inside go with it once its last process is gone.

// mountNSFile is the node's mount namespace, bound on a file.
func (n *Node) mountNSFile() string { return n.path("mnt", "ns") }

// privateDir is the node's own directory that stands for host path p. The CNI directories are
// those containerd's configuration names: the node's /opt/cni/bin and /etc/cni/net.d.
func (n *Node) privateDir(p string) string {
	switch p = filepath.Clean(p); p {
	case "/opt/cni/bin":
		return n.CNIBinDir()
	case "/etc/cni/net.d":
		return n.CNIConfDir()
	}
	return n.path("host", p)
}

// PrivateDir is where host path p of the node lives on the machine (p must be one of
// NodeOptions.PrivateHostDirs): what the node's pods write to hostPath p, seen from the host.
func (n *Node) PrivateDir(p string) string { return n.privateDir(p) }

// ensureMountNS creates the node's mount namespace with its bind mounts, unless it exists.
func (n *Node) ensureMountNS(ctx context.Context) error {
	if len(n.opts.PrivateHostDirs) == 0 {
		return nil
	}
	file := n.mountNSFile()
	if isNSMount(file) {
		return nil
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	// A namespace can only be bound on a file whose mount does not propagate (the kernel
	// refuses loops): give the directory a private mount of its own, whatever the host's
	// propagation (systemd makes / shared).
	if !isMountPoint(dir) {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s: %w", dir, err)
		}
	}
	if err := unix.Mount("", dir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making %s private: %w", dir, err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		return fmt.Errorf("creating %s: %w", file, err)
	}
	var script strings.Builder
	for _, p := range n.opts.PrivateHostDirs {
		own := n.privateDir(p)
		// The host path must exist to be a mount point; it stays an empty directory on the
		// host (the localcluster's down removes the ones it made).
		for _, d := range []string{own, p} {
			if err := os.MkdirAll(d, 0o755); err != nil { //nolint:gosec // like the host paths they stand for
				return fmt.Errorf("creating %s: %w", d, err)
			}
		}
		fmt.Fprintf(&script, "mount --bind %s %s\n", shellQuote(own), shellQuote(p))
	}
	// slave: the host's later mounts still reach the node (where / is shared), the node's
	// never reach the host.
	cmd := exec.CommandContext(ctx, "unshare", "--mount="+file, "--propagation=slave", "/bin/sh", "-ec", script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = unix.Unmount(file, unix.MNT_DETACH)
		return fmt.Errorf("creating the mount namespace of node %s: %w: %s", n.opts.Name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// inMountNS is the daemon's command run inside the node's mount namespace, if it has one:
// nsenter execs it in place, so the pid and, once exec'd, the command line are the daemon's.
func (n *Node) inMountNS(d daemon) daemon {
	if len(n.opts.PrivateHostDirs) == 0 {
		return d
	}
	d.mountNS = n.mountNSFile()
	return d
}

// wrapped is the program and arguments that start d: nsenter into its mount namespace first
// when it has one.
func (d daemon) wrapped() (string, []string) {
	if d.mountNS == "" {
		return d.bin, d.args
	}
	return "nsenter", append([]string{"--mount=" + d.mountNS, "--", d.bin}, d.args...)
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// isNSMount reports whether path is a mounted namespace file (nsfs).
func isNSMount(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// isMountPoint reports whether dir is a mount point in the caller's mount namespace.
func isMountPoint(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 5 && unescapeMount(fields[4]) == dir {
			return true
		}
	}
	return false
}
