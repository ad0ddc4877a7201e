package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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
// A process keeps the namespace alive: the holder, a daemon like the others (pid file, found
// again by a later podsg, stopped by Stop), which does nothing but wait. containerd and the
// kubelet enter its namespace through /proc/PID/ns/mnt. The namespace is not bound on a file as
// `ip netns` keeps network namespaces: the kernel refuses to bind a mount namespace that is not
// newer than the binder's own, and since Linux 6.18 namespace ids come from per-CPU batches, so
// a namespace made on the other CPU is often "older" than that of its creator — the bind failed
// with EINVAL whenever podsg itself ran in a mount namespace of its own (CI, hack/fresh-run.sh).

// holdScript waits forever; its child sleep goes with it when Stop signals the group.
const holdScript = "while :; do sleep 86400; done"

// mountHolder is the process that holds the node's mount namespace. Its command line
// (`sh -c SCRIPT NAME STATEDIR`) names the state dir, which is what identifies it in /proc.
func (n *Node) mountHolder() daemon {
	return daemon{
		name: "mount-namespace", dir: n.path("run"), bin: "/bin/sh", home: n.opts.StateDir,
		args:       []string{"-c", holdScript, "podsg-node-mount-namespace", n.opts.StateDir},
		newMountNS: true, killWithParent: n.opts.KillWithParent,
	}
}

// mountNSReady marks a holder whose namespace has all its bind mounts: a podsg interrupted
// between starting the holder and binding leaves a holder without it, which the next one
// replaces.
func (n *Node) mountNSReady() string { return n.path("run", "mount-namespace.ready") }

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
	holder := n.mountHolder()
	if _, ok := holder.running(); ok {
		if _, err := os.Stat(n.mountNSReady()); err == nil {
			return nil
		}
		if err := holder.stop(ctx, 5*time.Second); err != nil {
			return fmt.Errorf("replacing the half-made mount namespace of node %s: %w", n.opts.Name, err)
		}
	}
	if err := os.Remove(n.mountNSReady()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", n.mountNSReady(), err)
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
	pid, err := holder.start(ctx)
	if err != nil {
		return fmt.Errorf("creating the mount namespace of node %s: %w", n.opts.Name, err)
	}
	// The binds happen in the holder's namespace, after it exists: nsenter reports each
	// mount's error here, where a script inside the holder could only log it.
	cmd := exec.CommandContext(ctx, "nsenter", "--mount="+mountNSOf(pid), "--", "/bin/sh", "-ec", script.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = holder.stop(ctx, 5*time.Second)
		return fmt.Errorf("bind-mounting the private directories of node %s: %w: %s", n.opts.Name, err, strings.TrimSpace(string(out)))
	}
	if err := os.WriteFile(n.mountNSReady(), nil, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", n.mountNSReady(), err)
	}
	return nil
}

// releaseMountNS stops the holder; the namespace, and the mounts in it, go once the node's
// other processes in it have gone too.
func (n *Node) releaseMountNS(ctx context.Context) error {
	err := n.mountHolder().stop(ctx, 5*time.Second)
	if rmErr := os.Remove(n.mountNSReady()); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("removing %s: %w", n.mountNSReady(), rmErr))
	}
	return err
}

func mountNSOf(pid int) string { return "/proc/" + strconv.Itoa(pid) + "/ns/mnt" }

// inMountNS is the daemon's command run inside the node's mount namespace, if it has one:
// nsenter execs it in place, so the pid and, once exec'd, the command line are the daemon's.
func (n *Node) inMountNS(d daemon) daemon {
	if len(n.opts.PrivateHostDirs) == 0 {
		return d
	}
	h := n.mountHolder()
	d.mountNSHolder = &h
	return d
}

// wrapped is the program and arguments that start d: nsenter into its holder's mount
// namespace first when it has one, unshare a new one when it is a holder.
func (d daemon) wrapped() (string, []string, error) {
	switch {
	case d.newMountNS:
		// slave: the host's later mounts still reach the node (where / is shared), the node's
		// never reach the host.
		return "unshare", append([]string{"--mount", "--propagation=slave", "--", d.bin}, d.args...), nil
	case d.mountNSHolder != nil:
		pid, ok := d.mountNSHolder.running()
		if !ok {
			return "", nil, fmt.Errorf("%s: the node's mount namespace is gone (%s does not run)", d.name, d.mountNSHolder.name)
		}
		return "nsenter", append([]string{"--mount=" + mountNSOf(pid), "--", d.bin}, d.args...), nil
	}
	return d.bin, d.args, nil
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
