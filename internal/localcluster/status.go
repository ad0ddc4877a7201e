package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/podsg/podsg/internal/cluster"
)

// Status prints what runs: every daemon of the cluster with its pid, found by its pid file or
// by its command line (a lost pid file is reported, and so is a stale one), then any other
// process whose command line names the state dir, then the nodes as the API server sees them.
func Status(ctx context.Context, o Options, out io.Writer) error {
	if err := o.absStateDir(); err != nil {
		return err
	}
	if _, err := os.Stat(o.StateDir); errors.Is(err, os.ErrNotExist) {
		_, _ = fmt.Fprintln(out, "no local cluster at", o.StateDir)
	}
	o.recall()
	known := map[int]bool{}
	show := func(name string, d cluster.Daemon) {
		s := d.State()
		known[s.PID] = true
		for _, p := range s.Extra {
			known[p] = true
		}
		_, _ = fmt.Fprintf(out, "%-34s %s\n", name, s)
	}
	show("podsg-vpc", o.vpcDaemon())
	show("vpc-resolver", o.resolverDaemon())
	if cp, err := o.controlPlane("127.0.0.1"); err == nil {
		for _, d := range cp.Daemons() {
			show(d.Name(), d)
		}
	}
	_, _ = fmt.Fprintf(out, "podsg runs %s\n", modeName(o.HostProcesses))
	if o.HostProcesses {
		show("podsg-controller", o.controllerDaemon(""))
	}
	nodes, err := o.nodes()
	if err != nil {
		return err
	}
	for _, spec := range nodes {
		node, err := cluster.NewNode(o.nodeOptions(spec, cluster.NodeCredentials{}, nil))
		if err != nil {
			return err
		}
		for _, d := range node.Daemons() {
			show(d.Name()+" "+spec.Name, d)
		}
		if o.HostProcesses {
			show("podsg-agent "+spec.Name, o.agentDaemon(spec, node, cluster.NodeCredentials{}))
		}
	}
	if err := printOthers(out, o.StateDir, known); err != nil {
		return err
	}
	if o.KubeBinDir == "" {
		return nil
	}
	if _, err := os.Stat(o.Kubeconfig()); err != nil {
		return nil //nolint:nilerr // no cluster to ask
	}
	return o.printCluster(ctx, out)
}

// printCluster prints the nodes as the API server sees them and, in-cluster, podsg's pods:
// podsg's processes then (their containers are among the processes naming the state dir, as
// containerd's shims' children).
func (o *Options) printCluster(ctx context.Context, out io.Writer) error {
	kubectl := o.kubectl(o.Kubeconfig())
	outs, err := kubectl(ctx, "", "get", "nodes", "-o", "wide")
	_, _ = fmt.Fprint(out, outs)
	if err != nil || o.HostProcesses {
		return err
	}
	outs, err = kubectl(ctx, "", "get", "pods", "--namespace=podsg-system", "-o", "wide")
	_, _ = fmt.Fprint(out, outs)
	return err
}

// printOthers lists the processes naming dir that are none of the daemons: containerd shims,
// the local RDS's PostgreSQL, or leftovers.
func printOthers(out io.Writer, dir string, known map[int]bool) error {
	procs, err := cluster.ProcessesNaming(dir)
	if err != nil {
		return err
	}
	header := false
	for _, p := range procs {
		if known[p.PID] {
			continue
		}
		if !header {
			_, _ = fmt.Fprintf(out, "other processes naming %s:\n", dir)
			header = true
		}
		_, _ = fmt.Fprintf(out, "  pid %d: %s\n", p.PID, p.Command())
	}
	return nil
}
