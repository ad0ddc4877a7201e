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
	"strings"
	"time"

	"github.com/podsg/podsg/internal/cluster"
)

// Down stops everything Up started and removes the state dir: no process, namespace, link,
// mount, cgroup or firewall rule is left. It works on a half-started cluster too, and from any
// podsg binary: daemons are known by their command lines, not by the asking binary's path, and
// the one program it runs (podsg-vpc cleanup) is the one Up recorded. A step that fails does
// not stop the others; when anything is left, Down keeps the state dir (and every pid file in
// it), prints what is left and fails, so that another Down can finish the job.
func Down(ctx context.Context, o Options, out io.Writer) error {
	if err := o.absStateDir(); err != nil {
		return err
	}
	if _, err := os.Stat(o.StateDir); errors.Is(err, os.ErrNotExist) {
		left := o.leftovers()
		if left.empty() {
			_, _ = fmt.Fprintln(out, "no local cluster at", o.StateDir)
			return nil
		}
		left.print(out, o.StateDir)
		return fmt.Errorf("no local cluster state at %s, but %s is left of one: remove it by hand (podsg-vpc cleanup --id %s for namespaces and links)",
			o.StateDir, left.summary(), o.vpcID())
	}
	o.recall()
	var failed []error
	for _, s := range o.downSteps() {
		_, _ = fmt.Fprintln(out, "•", s.what)
		if err := s.run(ctx); err != nil {
			_, _ = fmt.Fprintf(out, "  failed: %v\n", err)
			failed = append(failed, fmt.Errorf("%s: %w", s.what, err))
		}
	}
	left := o.leftovers()
	if len(failed) == 0 && left.empty() {
		if err := os.RemoveAll(o.StateDir); err != nil {
			return err
		}
		_ = os.Remove(filepath.Dir(o.StateDir)) // e.g. /var/lib/podsg, if Up created it and it is empty now
		return nil
	}
	left.print(out, o.StateDir)
	msg := "tearing down the local cluster"
	if !left.empty() {
		msg += ", " + left.summary() + " left"
	}
	return fmt.Errorf("%s (state kept in %s: run podsg local down again once fixed): %w", msg, o.StateDir, errors.Join(failed...))
}

// step is one part of Down; each runs whatever the others did.
type step struct {
	what string
	run  func(context.Context) error
}

func failedStep(what string, err error) step {
	return step{what, func(context.Context) error { return err }}
}

// downSteps stop the nodes, podsg-controller, the control plane and the local VPC, then remove
// the VPC's kernel state, in that order.
func (o *Options) downSteps() []step {
	var steps []step
	nodes, err := o.nodes()
	if err != nil {
		steps = append(steps, failedStep("reading the node list", err))
	}
	for _, spec := range nodes {
		steps = append(steps, o.nodeStopSteps(spec)...)
	}
	if o.HostProcesses {
		steps = append(steps, step{"stopping podsg-controller", func(ctx context.Context) error { return o.controllerDaemon("").Stop(ctx, 10*time.Second) }})
	} else {
		// The nodes' pods are gone with the nodes, podsg-controller's and podsg-agent's too.
		steps = append(steps, step{"removing the host directories the nodes' own stood in for", o.removeHostDirs})
	}
	if cp, err := o.controlPlane("127.0.0.1"); err == nil {
		steps = append(steps, step{"stopping the control plane", cp.Down})
	} else {
		steps = append(steps, failedStep("stopping the control plane", err))
	}
	return append(steps,
		step{"stopping the VPC resolver", func(ctx context.Context) error { return o.resolverDaemon().Stop(ctx, 10*time.Second) }},
		step{"stopping the local VPC (podsg-vpc)", func(ctx context.Context) error { return o.vpcDaemon().Stop(ctx, 10*time.Second) }},
		step{"removing the local VPC's namespaces, links and routes (podsg-vpc cleanup)", o.cleanupVPC})
}

// nodeStopSteps stop a node's podsg-agent, then the node (kube-proxy, kubelet, pods, containerd).
func (o *Options) nodeStopSteps(spec nodeSpec) []step {
	node, err := cluster.NewNode(o.nodeOptions(spec, cluster.NodeCredentials{}, nil))
	if err != nil {
		return []step{failedStep("stopping node "+spec.Name, err)}
	}
	stopNode := step{"stopping node " + spec.Name + " (kube-proxy, kubelet, pods, containerd)", node.Stop}
	if !o.HostProcesses {
		return []step{stopNode} // podsg-agent is one of its pods
	}
	agent := o.agentDaemon(spec, node, cluster.NodeCredentials{})
	return []step{{"stopping podsg-agent on " + spec.Name, func(ctx context.Context) error { return agent.Stop(ctx, 10*time.Second) }}, stopNode}
}

// stopNode runs nodeStopSteps, all of them whatever each does.
func (o *Options) stopNode(ctx context.Context, spec nodeSpec) error {
	var errs []error
	for _, s := range o.nodeStopSteps(spec) {
		if err := s.run(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.what, err))
		}
	}
	return errors.Join(errs...)
}

// nodes are the nodes Up recorded.
func (o *Options) nodes() ([]nodeSpec, error) {
	data, err := os.ReadFile(o.path("nodes.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // Up stopped before any node
	}
	if err != nil {
		return nil, err
	}
	var nodes []nodeSpec
	if err := json.Unmarshal(data, &nodes); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", o.path("nodes.json"), err)
	}
	return nodes, nil
}

// cleanupVPC runs the recorded podsg-vpc's cleanup: the kernel objects are named by the
// version that made them.
func (o *Options) cleanupVPC(ctx context.Context) error {
	bin := filepath.Join(o.BinDir, "podsg-vpc")
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no podsg-vpc to clean up with (pass --bin-dir with podsg's binaries): %w", err)
	}
	msg, err := exec.CommandContext(ctx, bin, "cleanup", "--state-dir", o.path("vpc")).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cleanup: %w: %s", bin, err, strings.TrimSpace(string(msg)))
	}
	return nil
}
