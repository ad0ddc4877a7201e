package cluster

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/testenv"
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

// TestDaemonLifecycle: start records a pid, a second start finds it running, stop ends it and
// removes the pid file, and a stale pid file is not mistaken for a running daemon.
func TestDaemonLifecycle(t *testing.T) {
	testenv.Require(t, testenv.Coreutils)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	d := daemon{name: "sleeper", dir: t.TempDir(), bin: sleep, args: []string{"600"}, killWithParent: true}
	pid, err := d.start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d.start(t.Context()); err != nil || again != pid {
		t.Fatalf("second start = %d, %v; want %d", again, err, pid)
	}
	if err := d.stop(t.Context(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.running(); ok || exists(d.pidFile()) {
		t.Fatal("daemon still recorded as running after stop")
	}
	other := daemon{name: "other", dir: d.dir, bin: filepath.Join(d.dir, "not-this-binary")}
	if err := writePEM(other.pidFile(), "X", nil); err == nil { // any content that is not our pid
		if _, ok := other.running(); ok {
			t.Error("garbage pid file taken for a running daemon")
		}
	}
}
