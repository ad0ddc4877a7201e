package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/images"
)

// NodeOptions describe one node: a local-VPC instance (a network namespace that already has
// its interface and address) that should join the cluster.
type NodeOptions struct {
	Name string
	// ProviderID is the instance's, e.g. aws:///us-west-2a/i-0123456789abcdef0.
	ProviderID string
	// Netns is the path of the instance's network namespace.
	Netns string
	// NodeIP is the instance's address in Netns: the Node's InternalIP and the kubelet's
	// listening address.
	NodeIP string
	// PodCIDR feeds the placeholder bridge CNI; the VPC must route it to NodeIP.
	PodCIDR     string
	StateDir    string
	Credentials NodeCredentials
	// KubeletBin is the kubelet binary (in hack/kube-bin.sh's directory).
	KubeletBin string
	// Images are imported into the node's containerd before the kubelet starts; the sandbox
	// image must be among them.
	Images []images.Image
	// Optional, with defaults: containerd and ctr from PATH, /usr/lib/cni (Debian's
	// containernetworking-plugins), overlayfs, images.Pause.
	ContainerdBin, CtrBin, CNIPluginDir, Snapshotter, SandboxImage string
	// KillWithParent ties containerd's and the kubelet's lives to the caller's (tests).
	KillWithParent bool
	// Labels are the Node's labels the kubelet sets when it registers (--node-labels); the
	// NodeRestriction admission lets it set only kubelet's own and well-known ones, such as
	// topology.kubernetes.io/zone.
	Labels map[string]string
	// ExternalCNI leaves the pod network to another installer (podsg-agent writes its own
	// conflist into CNIConfDir and its plugin into CNIBinDir); only loopback is linked.
	ExternalCNI bool
	// KubeProxyBin, when set, runs kube-proxy (nftables mode) in the node's namespace beside
	// the kubelet, so that ClusterIP Services work from the node and its pods.
	KubeProxyBin string
	// ClusterCIDR is where pods get their addresses (the VPC's CIDR: pods have VPC IPs): kube-proxy
	// tells pod traffic to Services from outside traffic by it and masquerades only the latter.
	ClusterCIDR string
	// ClusterDNS is the kubelet's clusterDNS: the kube-dns Service's ClusterIP that pods with
	// dnsPolicy ClusterFirst get as their nameserver. Empty: pods get no nameserver.
	ClusterDNS string
	// PrivateHostDirs are host paths that containerd and the kubelet of this node (and so its
	// pods' hostPath volumes and the CNI plugins containerd runs) see as the node's own
	// directories, as each EC2 instance has its own: see mountns.go. Empty: they share the
	// host's file system.
	PrivateHostDirs []string
}

// Node is a running node.
type Node struct{ opts NodeOptions }

// NewNode validates opts and fills in defaults; it starts nothing. A Node made from the same
// options in another process can Stop what an earlier one started.
func NewNode(opts NodeOptions) (*Node, error) {
	if opts.Name == "" || opts.Netns == "" || opts.StateDir == "" || opts.KubeletBin == "" {
		return nil, errors.New("node: Name, Netns, StateDir and KubeletBin are required")
	}
	if opts.ClusterDNS != "" && net.ParseIP(opts.ClusterDNS) == nil {
		return nil, fmt.Errorf("node %s: ClusterDNS %q is not an IP", opts.Name, opts.ClusterDNS)
	}
	if _, _, err := net.ParseCIDR(opts.ClusterCIDR); err != nil && opts.KubeProxyBin != "" {
		return nil, fmt.Errorf("node %s: kube-proxy needs ClusterCIDR: %w", opts.Name, err)
	}
	if net.ParseIP(opts.NodeIP) == nil {
		return nil, fmt.Errorf("node %s: NodeIP %q is not an IP", opts.Name, opts.NodeIP)
	}
	if _, _, err := net.ParseCIDR(opts.PodCIDR); err != nil && !opts.ExternalCNI {
		return nil, fmt.Errorf("node %s: parsing PodCIDR: %w", opts.Name, err)
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&opts.ContainerdBin, "/usr/bin/containerd")
	def(&opts.CtrBin, "/usr/bin/ctr")
	def(&opts.CNIPluginDir, "/usr/lib/cni")
	def(&opts.Snapshotter, "overlayfs")
	def(&opts.SandboxImage, images.Pause)
	return &Node{opts: opts}, nil
}

func (n *Node) path(elem ...string) string {
	return filepath.Join(append([]string{n.opts.StateDir}, elem...)...)
}

// ContainerdSocket is the node's private containerd socket.
func (n *Node) ContainerdSocket() string { return n.path("containerd", "containerd.sock") }

// CNIConfDir and CNIBinDir are where this node's containerd looks for CNI configuration and
// plugins.
func (n *Node) CNIConfDir() string { return n.path("cni", "net.d") }

// CNIBinDir: see CNIConfDir.
func (n *Node) CNIBinDir() string { return n.path("cni", "bin") }

// cgroupRoot is the node's cgroup parent in every v1 hierarchy.
func (n *Node) cgroupRoot() string { return "/podsg/" + n.opts.Name }

func (n *Node) containerd() daemon {
	return n.inMountNS(daemon{
		name: "containerd", dir: n.path("run"), bin: n.opts.ContainerdBin, netns: n.opts.Netns, home: n.opts.StateDir,
		args: []string{"--config", n.path("containerd", "config.toml")}, killWithParent: n.opts.KillWithParent,
	})
}

func (n *Node) kubelet() daemon {
	return n.inMountNS(daemon{
		name: "kubelet", dir: n.path("run"), bin: n.opts.KubeletBin, netns: n.opts.Netns, home: n.opts.StateDir,
		killWithParent: n.opts.KillWithParent,
		args: append([]string{
			"--config=" + n.path("kubelet.yaml"), "--kubeconfig=" + n.opts.Credentials.Kubeconfig,
			"--root-dir=" + n.path("kubelet"), "--hostname-override=" + n.opts.Name,
			"--node-ip=" + n.opts.NodeIP, "--v=1",
		}, n.nodeLabelsFlag()...),
	})
}

// kubeProxy starts only when opts.KubeProxyBin is set; Stop looks for it anyway (by its
// program name and the state dir), so a Node made without the binary still stops one.
func (n *Node) kubeProxy() daemon {
	bin := n.opts.KubeProxyBin
	if bin == "" {
		bin = "kube-proxy"
	}
	return daemon{
		name: "kube-proxy", dir: n.path("run"), bin: bin, netns: n.opts.Netns, home: n.opts.StateDir,
		killWithParent: n.opts.KillWithParent,
		args:           []string{"--config=" + n.path("kube-proxy.yaml"), "--v=1"},
	}
}

// nodeLabelsFlag is --node-labels with opts.Labels, sorted; none without labels.
func (n *Node) nodeLabelsFlag() []string {
	if len(n.opts.Labels) == 0 {
		return nil
	}
	var kv []string
	for k, v := range n.opts.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return []string{"--node-labels=" + strings.Join(kv, ",")}
}

// Start brings up containerd, imports the images, and starts the kubelet, all inside the
// node's namespace. It returns once the kubelet runs; the Node object turns Ready shortly after
// (watch it through the API). Starting a running node changes nothing.
func (n *Node) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithValues("node", n.opts.Name)
	ctx = logr.NewContext(ctx, log)
	for _, d := range [][]string{{"run"}, {"containerd"}, {"cni", "net.d"}, {"cni", "bin"}, {"cni", "ipam"}, {"kubelet"}, {"pod-logs"}} {
		if err := os.MkdirAll(n.path(d...), 0o700); err != nil {
			return fmt.Errorf("creating node dirs: %w", err)
		}
	}
	if err := createCgroups(n.cgroupRoot()); err != nil {
		return err
	}
	if err := os.WriteFile(n.path("containerd", "config.toml"), []byte(n.containerdConfig()), 0o600); err != nil {
		return fmt.Errorf("writing containerd config: %w", err)
	}
	if err := n.writeCNI(); err != nil {
		return err
	}
	if err := n.ensureMountNS(ctx); err != nil {
		return err
	}
	ctrd := n.containerd()
	if _, err := ctrd.start(ctx); err != nil {
		return err
	}
	if err := waitReady(ctx, ctrd, n.criReady); err != nil {
		return err
	}
	if err := n.Import(ctx, n.opts.Images...); err != nil {
		return err
	}
	cfg, err := n.kubeletConfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.path("kubelet.yaml"), cfg, 0o600); err != nil {
		return fmt.Errorf("writing kubelet config: %w", err)
	}
	kl := n.kubelet()
	if _, err := kl.start(ctx); err != nil {
		return err
	}
	return n.startKubeProxy(ctx)
}

// Import loads images into the node's running containerd, where its kubelet finds them: Start
// imports NodeOptions.Images, and a caller imports more into a running node (the conformance
// suites' agnhost) the same way.
func (n *Node) Import(ctx context.Context, imgs ...images.Image) error {
	log := logr.FromContextOrDiscard(ctx)
	imp := images.Importer{Ctr: n.opts.CtrBin, Address: n.ContainerdSocket(), Snapshotter: n.opts.Snapshotter}
	for _, img := range imgs {
		if err := imp.Import(ctx, img); err != nil {
			return fmt.Errorf("node %s: %w", n.opts.Name, err)
		}
		log.V(1).Info("imported image", "image", img.Name)
	}
	return nil
}

func (n *Node) startKubeProxy(ctx context.Context) error {
	if n.opts.KubeProxyBin == "" {
		return nil
	}
	cfg, err := n.kubeProxyConfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.path("kube-proxy.yaml"), cfg, 0o600); err != nil {
		return fmt.Errorf("writing kube-proxy config: %w", err)
	}
	_, err = n.kubeProxy().start(ctx)
	return err
}

// KubeletLog and ContainerdLog are the daemons' log files, for diagnostics.
func (n *Node) KubeletLog() string    { return n.kubelet().logFile() }
func (n *Node) ContainerdLog() string { return n.containerd().logFile() }

// Stop tears the node down: kubelet, every pod (through CRI, so containerd runs the CNI DEL
// and removes the pods' namespaces), containerd and any shim left, the holder of its mount
// namespace, the node's cgroups, every mount under the state dir, the kubelet's
// /var/log/containers links, and the state dir.
// It keeps going after errors and reports them all.
func (n *Node) Stop(ctx context.Context) error {
	ctx = logr.NewContext(ctx, logr.FromContextOrDiscard(ctx).WithValues("node", n.opts.Name))
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	// kube-proxy's nftables table lives in the instance namespace and goes with it.
	add(n.kubeProxy().stop(ctx, 10*time.Second))
	add(n.kubelet().stop(ctx, 15*time.Second))
	ids := n.taskIDs()
	if _, ok := n.containerd().running(); ok {
		add(n.removePods(ctx))
	}
	add(n.containerd().stop(ctx, 10*time.Second))
	add(killShims(n.ContainerdSocket()))
	// Looked for even without PrivateHostDirs: a Node made from other options stops it too.
	add(n.releaseMountNS(ctx))
	add(removeCgroups(ctx, n.cgroupRoot()))
	add(unmountUnder(n.opts.StateDir))
	add(removeContainerLogLinks(n.opts.StateDir))
	add(n.removeHostLeftovers(ids))
	for _, d := range []daemon{n.kubeProxy(), n.kubelet(), n.containerd(), n.mountHolder()} {
		if pid, ok := d.running(); ok {
			// Its pid file is the record a later Stop needs: keep the state dir.
			add(fmt.Errorf("node state %s kept: %s (pid %d) still runs", n.opts.StateDir, d.name, pid))
			return errors.Join(errs...)
		}
	}
	if err := os.RemoveAll(n.opts.StateDir); err != nil {
		add(fmt.Errorf("removing node state: %w", err))
	}
	return errors.Join(errs...)
}

// Daemons are the node's processes, for status reports.
func (n *Node) Daemons() []Daemon {
	ds := []Daemon{{n.containerd()}, {n.kubelet()}}
	if n.opts.KubeProxyBin != "" {
		ds = append(ds, Daemon{n.kubeProxy()})
	}
	if len(n.opts.PrivateHostDirs) != 0 {
		ds = append(ds, Daemon{n.mountHolder()})
	}
	return ds
}
