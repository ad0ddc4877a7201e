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
	// Index numbers the node (1, 2, …): its instance is nodeInstanceName(Index), in subnet
	// subnetOf(Index). Records of an older podsg have none (0).
	Index      int    `json:"index,omitempty"`
	Name       string `json:"name"`
	InstanceID string `json:"instanceID"`
	IP         string `json:"ip"`
	AZ         string `json:"az,omitempty"`
	Netns      string `json:"netns"`
}

func (o *Options) nodeSpec(index int, inst instance) nodeSpec {
	ns := topo.Names{ID: topo.IDFromStateDir(o.path("vpc"))}.Instance(inst.ID)
	return nodeSpec{Index: index, Name: "ip-" + strings.ReplaceAll(inst.IP, ".", "-") + "." + Region + ".compute.internal",
		InstanceID: inst.ID, IP: inst.IP, AZ: inst.AZ, Netns: "/run/netns/" + ns}
}

// zone is the node's availability zone.
func (s nodeSpec) zone() string {
	if s.AZ == "" {
		return Subnets[0].AZ // an older podsg put every node in the first subnet
	}
	return s.AZ
}

// providerID is the Node's spec.providerID, as the AWS cloud provider writes it.
func (s nodeSpec) providerID() string { return "aws:///" + s.zone() + "/" + s.InstanceID }

func (o *Options) nodeOptions(spec nodeSpec, creds cluster.NodeCredentials, imgs []images.Image) cluster.NodeOptions {
	return cluster.NodeOptions{Name: spec.Name, ProviderID: spec.providerID(), Netns: spec.Netns,
		// Paths use the instance id, not the longer node name: unix sockets live below them.
		NodeIP: spec.IP, StateDir: o.path("nodes", spec.InstanceID), Credentials: creds, KubeletBin: filepath.Join(o.KubeBinDir, "kubelet"),
		Images: imgs, ExternalCNI: true,
		// Pods have VPC addresses: the VPC's CIDR is the cluster's.
		KubeProxyBin: filepath.Join(o.KubeBinDir, "kube-proxy"), ClusterCIDR: VPCCIDR, ClusterDNS: ClusterDNSIP,
		PrivateHostDirs: o.privateHostDirs(),
		Labels: map[string]string{
			// What the AWS cloud provider would label the node with.
			"topology.kubernetes.io/region": Region, "topology.kubernetes.io/zone": spec.zone(),
			"node.kubernetes.io/instance-type": InstanceType,
		}}
}

// privateHostDirs are the host paths each node has to itself: in-cluster, those of the agent
// DaemonSet's hostPath volumes; as host processes, none (each agent is told its own paths).
func (o *Options) privateHostDirs() []string {
	if o.HostProcesses {
		return nil
	}
	return hostDirs
}

func (o *Options) agentDaemon(spec nodeSpec, node *cluster.Node, creds cluster.NodeCredentials) cluster.Daemon {
	dir := o.path("agents", spec.InstanceID)
	return cluster.NewDaemon(cluster.DaemonOptions{Name: "podsg-agent", Dir: dir, Bin: filepath.Join(o.BinDir, "podsg-agent"), Netns: spec.Netns,
		Home: dir, Args: []string{
			"--node-name=" + spec.Name, "--kubeconfig=" + creds.Kubeconfig, "--ec2-endpoint=" + VPCEndpoint, "--enable-pod-eni", "--network-policy",
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
	if !o.HostProcesses {
		return nil // the DaemonSet runs podsg-agent
	}
	if _, err := o.agentDaemon(spec, node, creds).Start(ctx); err != nil {
		return fmt.Errorf("starting podsg-agent on %s: %w", spec.Name, err)
	}
	return nil
}

// waitNodesReady waits until every named node is Ready; if one is not in time, the error says
// why, as its Ready condition does.
func (o *Options) waitNodesReady(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), names []string) error {
	var notReady []string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		out, err := kubectl(ctx, "", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.name}{"\t"}`+
			`{.status.conditions[?(@.type=="Ready")].status}{"\t"}{.status.conditions[?(@.type=="Ready")].message}{"\n"}{end}`)
		if err != nil {
			return false, nil //nolint:nilerr // the apiserver may still be settling
		}
		notReady = notReadyOf(out, names)
		return len(notReady) == 0, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for nodes to be Ready (not yet: %s): %w", strings.Join(notReady, "; "), err)
	}
	return nil
}

// notReadyOf lists the names that kubectl's "<name>\t<Ready status>\t<message>" lines do not
// show Ready, each with the reason its condition gives.
func notReadyOf(lines string, names []string) []string {
	why := map[string]string{}
	for _, l := range strings.Split(lines, "\n") {
		f := strings.SplitN(l, "\t", 3)
		if len(f) < 2 {
			continue
		}
		if f[1] == "True" {
			why[f[0]] = ""
		} else if len(f) == 3 {
			why[f[0]] = f[2]
		}
	}
	var out []string
	for _, n := range names {
		reason, registered := why[n]
		switch {
		case !registered:
			out = append(out, n+" (not registered)")
		case reason != "":
			out = append(out, n+" ("+reason+")")
		}
	}
	return out
}

func nodeNames(nodes []nodeSpec) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	return out
}
