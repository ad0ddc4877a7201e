package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/podsg/podsg/internal/cluster"
)

// Down stops everything Up started and removes the state dir: no process, namespace, link,
// mount, cgroup or firewall rule is left. It works on a half-started cluster too.
func Down(ctx context.Context, o Options, out io.Writer) error {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if _, err := os.Stat(o.StateDir); errors.Is(err, os.ErrNotExist) {
		_, _ = fmt.Fprintln(out, "no local cluster at", o.StateDir)
		return nil
	}
	o.recall()
	var errs []error
	var nodes []nodeSpec
	if data, err := os.ReadFile(o.path("nodes.json")); err == nil {
		errs = append(errs, json.Unmarshal(data, &nodes))
	}
	for _, spec := range nodes {
		_, _ = fmt.Fprintln(out, "• stopping node", spec.Name)
		node, err := cluster.NewNode(o.nodeOptions(spec, cluster.NodeCredentials{}, nil))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, o.agentDaemon(spec, node, cluster.NodeCredentials{}).Stop(ctx, 10*time.Second))
		errs = append(errs, node.Stop(ctx))
	}
	_, _ = fmt.Fprintln(out, "• stopping podsg-controller, the control plane and the local VPC")
	errs = append(errs, o.controllerDaemon("").Stop(ctx, 10*time.Second))
	if cp, err := o.controlPlane("127.0.0.1"); err == nil {
		errs = append(errs, cp.Down(ctx))
	} else {
		errs = append(errs, err)
	}
	errs = append(errs, o.vpcDaemon().Stop(ctx, 10*time.Second))
	if o.BinDir != "" {
		cmd := exec.CommandContext(ctx, filepath.Join(o.BinDir, "podsg-vpc"), "cleanup", "--state-dir", o.path("vpc"))
		if msg, err := cmd.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("cleaning up the local VPC's kernel state: %w: %s", err, msg))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tearing down (state kept in %s for another try): %w", o.StateDir, err)
	}
	if err := os.RemoveAll(o.StateDir); err != nil {
		return err
	}
	_ = os.Remove(filepath.Dir(o.StateDir)) // e.g. /var/lib/podsg, if Up created it and it is empty now
	return nil
}

// Status prints what runs.
func Status(ctx context.Context, o Options, out io.Writer) error {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	o.recall()
	show := func(name string, d cluster.Daemon) {
		if pid, ok := d.Running(); ok {
			_, _ = fmt.Fprintf(out, "%-18s running (pid %d)\n", name, pid)
		} else {
			_, _ = fmt.Fprintf(out, "%-18s stopped\n", name)
		}
	}
	show("podsg-vpc", o.vpcDaemon())
	show("podsg-controller", o.controllerDaemon(""))
	var nodes []nodeSpec
	if data, err := os.ReadFile(o.path("nodes.json")); err == nil {
		_ = json.Unmarshal(data, &nodes)
	}
	for _, spec := range nodes {
		node, err := cluster.NewNode(o.nodeOptions(spec, cluster.NodeCredentials{}, nil))
		if err != nil {
			return err
		}
		show("podsg-agent "+spec.Name, o.agentDaemon(spec, node, cluster.NodeCredentials{}))
	}
	if o.KubeBinDir != "" {
		if _, err := os.Stat(o.Kubeconfig()); err == nil {
			outs, err := o.kubectl(o.Kubeconfig())(ctx, "", "get", "nodes", "-o", "wide")
			_, _ = fmt.Fprint(out, outs)
			return err
		}
	}
	return nil
}
