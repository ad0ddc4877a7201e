package localcluster

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/internal/cluster"
	"github.com/podsg/podsg/internal/images"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// nodeSpec is what Down needs to stop a node that an earlier Up started.
type nodeSpec struct {
	Name       string `json:"name"`
	InstanceID string `json:"instanceID"`
	IP         string `json:"ip"`
	Netns      string `json:"netns"`
}

func (o *Options) nodeSpec(inst instance) nodeSpec {
	ns := topo.Names{ID: topo.IDFromStateDir(o.path("vpc"))}.Instance(inst.ID)
	return nodeSpec{Name: "ip-" + strings.ReplaceAll(inst.IP, ".", "-") + "." + Region + ".compute.internal",
		InstanceID: inst.ID, IP: inst.IP, Netns: "/run/netns/" + ns}
}

func (o *Options) nodeOptions(spec nodeSpec, creds cluster.NodeCredentials, imgs []images.Image) cluster.NodeOptions {
	return cluster.NodeOptions{Name: spec.Name, ProviderID: "aws:///" + Subnets[0].AZ + "/" + spec.InstanceID, Netns: spec.Netns,
		// Paths use the instance id, not the longer node name: unix sockets live below them.
		NodeIP: spec.IP, StateDir: o.path("nodes", spec.InstanceID), Credentials: creds, KubeletBin: filepath.Join(o.KubeBinDir, "kubelet"),
		Images: imgs, ExternalCNI: true}
}

func (o *Options) agentDaemon(spec nodeSpec, node *cluster.Node, creds cluster.NodeCredentials) cluster.Daemon {
	dir := o.path("agents", spec.InstanceID)
	return cluster.NewDaemon(cluster.DaemonOptions{Name: "podsg-agent", Dir: dir, Bin: filepath.Join(o.BinDir, "podsg-agent"), Netns: spec.Netns,
		Home: dir, Args: []string{
			"--node-name=" + spec.Name, "--kubeconfig=" + creds.Kubeconfig, "--ec2-endpoint=" + VPCEndpoint, "--enable-pod-eni",
			"--subif-driver=vxlan", "--state-dir=" + filepath.Join(dir, "pods"), "--socket=" + filepath.Join(dir, "agent.sock"),
			"--cni-bin-source=" + filepath.Join(o.BinDir, "podsg-cni"), "--cni-bin-dir=" + node.CNIBinDir(), "--cni-conf-dir=" + node.CNIConfDir()},
		Env: daemonEnv()})
}

// startNode runs containerd and the kubelet inside the instance, and podsg-agent beside them.
// The node's credentials are its own (system:node:<name>): the agent reads the node's pods and
// labels its Node with them, nothing more.
func (o *Options) startNode(ctx context.Context, cp *cluster.ControlPlane, spec nodeSpec, imgs []images.Image) error {
	creds, err := cp.IssueNode(spec.Name, spec.IP, o.path("agents", spec.InstanceID, "credentials"))
	if err != nil {
		return err
	}
	node, err := cluster.NewNode(o.nodeOptions(spec, creds, imgs))
	if err != nil {
		return err
	}
	if err := node.Start(ctx); err != nil {
		return fmt.Errorf("starting node %s: %w", spec.Name, err)
	}
	if _, err := o.agentDaemon(spec, node, creds).Start(ctx); err != nil {
		return fmt.Errorf("starting podsg-agent on %s: %w", spec.Name, err)
	}
	return nil
}

func (o *Options) waitNodesReady(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), n int) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		out, err := kubectl(ctx, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}`)
		if err != nil {
			return false, nil //nolint:nilerr // the apiserver may still be settling
		}
		last = out
		return strings.Count(out, "True") == n, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d nodes Ready (ready: %d): %w", n, strings.Count(last, "True"), err)
	}
	return nil
}
