package cluster

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// containerdConfig keeps every path containerd would otherwise take from /var/lib, /run and
// /opt under the node's state dir, so Stop can remove them; pod network namespaces too
// (netns_mounts_under_state_dir), so none is left in /run/netns.
func (n *Node) containerdConfig() string {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	lines := []string{
		`version = 2`,
		`root = ` + q(n.path("containerd", "root")),
		`state = ` + q(n.path("containerd", "state")),
		// Snapshotters and services the node never uses; fewer plugins, fewer stray dirs.
		`disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]`,
		`[grpc]`,
		`  address = ` + q(n.ContainerdSocket()),
		`[ttrpc]`,
		`  address = ` + q(n.ContainerdSocket()+".ttrpc"),
		`[plugins."io.containerd.internal.v1.opt"]`,
		`  path = ` + q(n.path("containerd", "opt")),
		`[plugins."io.containerd.grpc.v1.cri"]`,
		`  sandbox_image = ` + q(n.opts.SandboxImage),
		// Root here lacks CAP_SYS_RESOURCE: without this, the sandbox's oom_score_adj of -998
		// fails and runc cannot start any pod (research/feasibility.md §5).
		`  restrict_oom_score_adj = true`,
		`  netns_mounts_under_state_dir = true`,
		`  disable_apparmor = true`,
		`  stream_server_address = "127.0.0.1"`,
		`  [plugins."io.containerd.grpc.v1.cri".containerd]`,
		`    snapshotter = ` + q(n.opts.Snapshotter),
		`    default_runtime_name = "runc"`,
		`    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]`,
		`      runtime_type = "io.containerd.runc.v2"`,
		`      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`,
		`        Root = ` + q(n.path("containerd", "runc")),
		`  [plugins."io.containerd.grpc.v1.cri".cni]`,
		`    bin_dir = ` + q(n.path("cni", "bin")),
		`    conf_dir = ` + q(n.path("cni", "net.d")),
	}
	return strings.Join(lines, "\n") + "\n"
}

// kubeletConfig is the KubeletConfiguration, in JSON (which is YAML).
func (n *Node) kubeletConfig() ([]byte, error) {
	creds := n.opts.Credentials
	cfg := map[string]any{
		"apiVersion": "kubelet.config.k8s.io/v1beta1",
		"kind":       "KubeletConfiguration",
		// Serve on the instance's address: the apiserver dials it there for logs/exec.
		"address":            n.opts.NodeIP,
		"port":               10250,
		"readOnlyPort":       0,
		"healthzBindAddress": "127.0.0.1", // the node namespace's own loopback
		"tlsCertFile":        creds.ServingCert,
		"tlsPrivateKeyFile":  creds.ServingKey,
		// Only holders of a CA-signed client certificate (the apiserver) reach the kubelet API;
		// with no webhook, every authenticated caller is allowed: fine for a local cluster.
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": false},
			"x509":      map[string]any{"clientCAFile": creds.CAFile},
		},
		"authorization":            map[string]any{"mode": "AlwaysAllow"},
		"containerRuntimeEndpoint": "unix://" + n.ContainerdSocket(),
		"providerID":               n.opts.ProviderID,
		// cgroup v1 here: kubelet 1.37 refuses it unless told otherwise.
		"failCgroupV1": false,
		"cgroupDriver": "cgroupfs",
		// Pods' cgroups under a root of the node's own, so nodes sharing the machine do not share
		// a kubepods tree and Stop removes exactly this node's.
		"cgroupRoot":             n.cgroupRoot(),
		"failSwapOn":             false,
		"enforceNodeAllocatable": []string{},
		// Several nodes share one disk and memory: no evictions, no image GC of our
		// registry-less images.
		"evictionHard":                map[string]string{},
		"imageGCHighThresholdPercent": 100,
		"resolvConf":                  "",
		"clusterDomain":               ClusterDomain,
		"podLogsDir":                  n.path("pod-logs"),
		"serializeImagePulls":         false,
	}
	if n.opts.ClusterDNS != "" {
		cfg["clusterDNS"] = []string{n.opts.ClusterDNS}
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding kubelet config: %w", err)
	}
	return data, nil
}

// ClusterDomain is the cluster's DNS domain, as on EKS.
const ClusterDomain = "cluster.local"

// kubeProxyConfig is kube-proxy's KubeProxyConfiguration, in JSON (which is YAML): nftables
// mode, as the node's own namespace is its host; it leaves the kernel's conntrack limits
// alone, because nf_conntrack_max cannot be set from a namespace other than the machine's.
func (n *Node) kubeProxyConfig() ([]byte, error) {
	cfg := map[string]any{
		"apiVersion":       "kubeproxy.config.k8s.io/v1alpha1",
		"kind":             "KubeProxyConfiguration",
		"mode":             "nftables",
		"clientConnection": map[string]any{"kubeconfig": n.opts.Credentials.ProxyKubeconfig},
		// Its Node (for the node's addresses) is found by the kubelet's name for it.
		"hostnameOverride": n.opts.Name,
		"clusterCIDR":      n.opts.ClusterCIDR,
		// Both in the instance namespace, so nodes on one machine do not collide.
		"healthzBindAddress": "127.0.0.1:10256",
		"metricsBindAddress": "127.0.0.1:10249",
		"conntrack":          map[string]any{"maxPerCore": 0, "min": 0},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding kube-proxy config: %w", err)
	}
	return data, nil
}

// cniConfig is the placeholder pod network until podsg's CNI plugin lands: a bridge in the
// node namespace with the node as the pods' gateway, and host-local addresses from PodCIDR.
// No masquerade: the local VPC routes PodCIDR to the node, so pods keep their addresses.
func (n *Node) cniConfig() ([]byte, error) {
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "podsg-bridge",
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
				"ipam": map[string]any{
					"type": "host-local", "ranges": [][]map[string]string{{{"subnet": n.opts.PodCIDR}}},
					"routes": []map[string]string{{"dst": "0.0.0.0/0"}},
					// Default is /var/lib/cni/networks: keep it in the state dir.
					"dataDir": n.path("cni", "ipam"),
				},
			},
			map[string]any{"type": "loopback"},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}

// writeCNI installs the conflist and links the plugins into the private bin dir.
func (n *Node) writeCNI() error {
	plugins := []string{"loopback"} // containerd brings up each pod's lo with it
	if !n.opts.ExternalCNI {
		conf, err := n.cniConfig()
		if err != nil {
			return fmt.Errorf("encoding CNI config: %w", err)
		}
		if err := os.WriteFile(n.path("cni", "net.d", "10-podsg-bridge.conflist"), conf, 0o600); err != nil {
			return fmt.Errorf("writing CNI config: %w", err)
		}
		plugins = append(plugins, "bridge", "host-local")
	}
	for _, p := range plugins {
		dst := n.path("cni", "bin", p)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(n.opts.CNIPluginDir, p), dst); err != nil {
			return fmt.Errorf("linking CNI plugin %s: %w", p, err)
		}
	}
	return nil
}
