package cluster

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func testNode(t *testing.T) *Node {
	t.Helper()
	n, err := NewNode(NodeOptions{
		Name: "n1", Netns: "/run/netns/x", NodeIP: "10.0.1.10", PodCIDR: "10.0.128.0/24",
		StateDir: "/state/n1", KubeletBin: "/bin/kubelet", ProviderID: "aws:///us-west-2a/i-1",
		Credentials: NodeCredentials{Kubeconfig: "/c/kc", CAFile: "/c/ca.crt", ServingCert: "/c/k.crt", ServingKey: "/c/k.key"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestContainerdConfig pins the settings this machine needs and the private paths cleanup
// relies on.
func TestContainerdConfig(t *testing.T) {
	cfg := testNode(t).containerdConfig()
	for _, want := range []string{
		`restrict_oom_score_adj = true`, `sandbox_image = "podsg.local/pause:latest"`, `netns_mounts_under_state_dir = true`,
		`root = "/state/n1/containerd/root"`, `state = "/state/n1/containerd/state"`, `address = "/state/n1/containerd/containerd.sock"`,
		`bin_dir = "/state/n1/cni/bin"`, `conf_dir = "/state/n1/cni/net.d"`, `Root = "/state/n1/containerd/runc"`, `snapshotter = "overlayfs"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("containerd config lacks %s", want)
		}
	}
}

func TestKubeletConfig(t *testing.T) {
	data, err := testNode(t).kubeletConfig()
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"failCgroupV1": false, "cgroupDriver": "cgroupfs", "address": "10.0.1.10", "resolvConf": "",
		"providerID": "aws:///us-west-2a/i-1", "cgroupRoot": "/podsg/n1", "podLogsDir": "/state/n1/pod-logs",
		"containerRuntimeEndpoint": "unix:///state/n1/containerd/containerd.sock",
	} {
		if cfg[k] != want {
			t.Errorf("%s = %v, want %v", k, cfg[k], want)
		}
	}
	if cfg["authentication"].(map[string]any)["anonymous"].(map[string]any)["enabled"] != false {
		t.Error("anonymous kubelet access enabled")
	}
}

// TestKubeletClusterDNS: with ClusterDNS, pods with dnsPolicy ClusterFirst get it as their
// nameserver; without, the kubelet has none to give.
func TestKubeletClusterDNS(t *testing.T) {
	for _, dns := range []string{"", "10.100.0.10"} {
		n := testNode(t)
		n.opts.ClusterDNS = dns
		data, err := n.kubeletConfig()
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			ClusterDNS    []string `json:"clusterDNS"`
			ClusterDomain string   `json:"clusterDomain"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatal(err)
		}
		want := []string(nil)
		if dns != "" {
			want = []string{dns}
		}
		if !slices.Equal(cfg.ClusterDNS, want) || cfg.ClusterDomain != "cluster.local" {
			t.Errorf("ClusterDNS %q: clusterDNS %v, clusterDomain %q; want %v, cluster.local", dns, cfg.ClusterDNS, cfg.ClusterDomain, want)
		}
	}
}

// TestKubeProxyConfig pins what kube-proxy needs in an instance namespace: nftables mode, its
// Node found by the kubelet's name, the pods' CIDR, listeners on the namespace's loopback,
// and the machine-wide conntrack limit left alone.
func TestKubeProxyConfig(t *testing.T) {
	n := testNode(t)
	n.opts.KubeProxyBin, n.opts.ClusterCIDR = "/bin/kube-proxy", "10.0.0.0/16"
	n.opts.Credentials.ProxyKubeconfig = "/c/kube-proxy.kubeconfig"
	data, err := n.kubeProxyConfig()
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"kind": "KubeProxyConfiguration", "mode": "nftables", "hostnameOverride": "n1", "clusterCIDR": "10.0.0.0/16",
		"healthzBindAddress": "127.0.0.1:10256", "metricsBindAddress": "127.0.0.1:10249",
	} {
		if cfg[k] != want {
			t.Errorf("%s = %v, want %v", k, cfg[k], want)
		}
	}
	if kc := cfg["clientConnection"].(map[string]any)["kubeconfig"]; kc != "/c/kube-proxy.kubeconfig" {
		t.Errorf("kubeconfig %v", kc)
	}
	if ct := cfg["conntrack"].(map[string]any); ct["maxPerCore"] != 0.0 || ct["min"] != 0.0 {
		t.Errorf("conntrack %v: want maxPerCore 0 and min 0 (leave nf_conntrack_max alone)", ct)
	}
	if args := strings.Join(n.kubeProxy().args, " "); !strings.Contains(args, "--config=/state/n1/kube-proxy.yaml") {
		t.Errorf("kube-proxy args %q", args)
	}
}

func TestNewNodeValidates(t *testing.T) {
	for name, o := range map[string]NodeOptions{
		"no name":    {Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "10.0.0.1", PodCIDR: "10.1.0.0/24"},
		"bad ip":     {Name: "n", Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "nope", PodCIDR: "10.1.0.0/24"},
		"bad podnet": {Name: "n", Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "10.0.0.1", PodCIDR: "10.1.0.0"},
		"bad dns":    {Name: "n", Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "10.0.0.1", PodCIDR: "10.1.0.0/24", ClusterDNS: "kube-dns"},
		"proxy without cluster CIDR": {Name: "n", Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "10.0.0.1", PodCIDR: "10.1.0.0/24",
			KubeProxyBin: "/kp"},
	} {
		if _, err := NewNode(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/tmp/a\040b/c`); got != "/tmp/a b/c" {
		t.Errorf("unescapeMount = %q", got)
	}
}
