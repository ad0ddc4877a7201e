package cluster

import (
	"encoding/json"
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

func TestNewNodeValidates(t *testing.T) {
	for name, o := range map[string]NodeOptions{
		"no name":    {Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "10.0.0.1", PodCIDR: "10.1.0.0/24"},
		"bad ip":     {Name: "n", Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "nope", PodCIDR: "10.1.0.0/24"},
		"bad podnet": {Name: "n", Netns: "/x", StateDir: "/s", KubeletBin: "/k", NodeIP: "10.0.0.1", PodCIDR: "10.1.0.0"},
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
