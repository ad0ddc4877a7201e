package cluster_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"

	"github.com/podsg/podsg/internal/cluster"
	ct "github.com/podsg/podsg/internal/cluster/clustertest"
	"github.com/podsg/podsg/internal/images"
	"github.com/podsg/podsg/internal/testenv"
)

// Addresses of the test topology; 10.219.0.0/16 exists only in the namespaces below and in
// the root namespace's explicit route into them.
//
//	root ns: apiserver on 10.219.0.1 ──veth── "vpc" ns (router) ──veth── node ns 10.219.1.10
//	                                                    └──────veth── db ns 10.219.2.10 (PostgreSQL)
const (
	hostAddr = "10.219.0.1"
	nodeIP   = "10.219.1.10"
	dbIP     = "10.219.2.10"
	podCIDR  = "10.219.128.0/24"
)

// topology builds the namespaces and routes above and returns the node's and db's names.
func topology(t *testing.T) (node, db string) {
	t.Helper()
	s := ct.Suffix(t)
	vpc, node, db := "psg-vpc-"+s, "psg-node-"+s, "psg-db-"+s
	ct.Netns(t, vpc)
	ct.Netns(t, node)
	ct.Netns(t, db)
	ct.Veth(t, ct.End{Name: "psgh" + s, CIDR: hostAddr + "/30"}, ct.End{Netns: vpc, Name: "host", CIDR: "10.219.0.2/30"})
	ct.Veth(t, ct.End{Netns: vpc, Name: "node", CIDR: "10.219.1.1/24"}, ct.End{Netns: node, Name: "eth0", CIDR: nodeIP + "/24"})
	ct.Veth(t, ct.End{Netns: vpc, Name: "db", CIDR: "10.219.2.1/24"}, ct.End{Netns: db, Name: "eth0", CIDR: dbIP + "/24"})
	ct.InNetns(t, vpc, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	ct.InNetns(t, vpc, "ip", "route", "add", podCIDR, "via", nodeIP)
	ct.InNetns(t, node, "ip", "route", "add", "default", "via", "10.219.1.1")
	ct.InNetns(t, db, "ip", "route", "add", "default", "via", "10.219.2.1")
	// The apiserver dials the kubelet at the node IP: give the root namespace a route into the
	// VPC (it goes away with the veth), and prove it is used before anything connects.
	ct.Run(t, "ip", "route", "add", "10.219.0.0/16", "via", "10.219.0.2")
	for _, dst := range []string{nodeIP, dbIP, "10.219.128.5"} {
		if dev := ct.RouteVia(t, "", dst); dev != "psgh"+s {
			t.Fatalf("root namespace would reach %s via %s", dst, dev)
		}
	}
	return node, db
}

func testImages(t *testing.T) []images.Image {
	t.Helper()
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/pgcheck")
	testenv.Require(t, testenv.Busybox)
	bb, err := images.BusyboxFiles(images.BusyboxBin)
	if err != nil {
		t.Fatal(err)
	}
	return []images.Image{images.PauseImage(images.BusyboxBin), images.BusyboxImage(bb), images.PGCheckImage(bin, bb)}
}

const (
	nodeName   = "ip-10-219-1-10.us-west-2.compute.internal"
	providerID = "aws:///us-west-2a/i-0a1b2c3d4e5f60718"
)

// setupNode brings up the topology, PostgreSQL, a control plane and one node, and returns the
// admin kubeconfig and the node's options. The node is stopped on cleanup by a fresh Node
// built from the same options, as `podsg local down` would from another process.
func setupNode(t *testing.T) (admin string, opts cluster.NodeOptions) {
	t.Helper()
	bin := testenv.KubeBinDir(t)
	testenv.Require(t, testenv.CNIPlugins, testenv.Containerd, testenv.Runc, testenv.Busybox, testenv.PostgreSQL)
	stateRoot := t.TempDir()
	t.Cleanup(func() { assertNoLeftovers(t, stateRoot, nodeName) })
	nodeNS, dbNS := topology(t)
	ct.StartPostgres(t, dbNS, dbIP, 5432)
	cp := startPlane(t, hostAddr)
	creds, err := cp.IssueNode(nodeName, nodeIP, filepath.Join(stateRoot, "node-creds"))
	if err != nil {
		t.Fatal(err)
	}
	opts = cluster.NodeOptions{
		Name: nodeName, ProviderID: providerID, Netns: "/run/netns/" + nodeNS, NodeIP: nodeIP, PodCIDR: podCIDR,
		StateDir: filepath.Join(stateRoot, "node"), Credentials: creds, KubeletBin: filepath.Join(bin, "kubelet"),
		Images: testImages(t), KillWithParent: true,
	}
	node, err := cluster.NewNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kubelet log tail:\n%s", tail(node.KubeletLog()))
		}
		fresh, err := cluster.NewNode(opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Stop(logr.NewContext(context.WithoutCancel(t.Context()), testr.New(t))); err != nil {
			t.Errorf("stopping node: %v", err)
		}
	})
	if err := node.Start(logr.NewContext(t.Context(), testr.New(t))); err != nil {
		t.Fatal(err)
	}
	return cp.AdminKubeconfig(), opts
}

// TestNodeRunsTutorialPod is the local cluster end to end: a real kubelet in an instance
// namespace joins the control plane, runs the tutorial's app against PostgreSQL in another
// namespace, and serves kubectl logs and exec; then everything is gone.
func TestNodeRunsTutorialPod(t *testing.T) {
	testenv.RequireRoot(t)
	admin, _ := setupNode(t)
	const name = nodeName
	waitFor(t, "node Ready", func() bool {
		return kubectlOK(admin, "get", "node", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`) == "True"
	})
	if got := kubectl(t, admin, "get", "node", name, "-o", "jsonpath={.spec.providerID} {.status.addresses[?(@.type==\"InternalIP\")].address}"); got != providerID+" "+nodeIP {
		t.Errorf("node providerID and InternalIP = %q", got)
	}
	waitFor(t, "default ServiceAccount", func() bool { return kubectlOK(admin, "get", "sa", "default", "-o", "name") != "" })

	applyPods(t, admin)
	waitFor(t, "postgres-test to finish", func() bool {
		return kubectlOK(admin, "get", "pod", "postgres-test", "-o", "jsonpath={.status.phase}") == "Succeeded"
	})
	logs := kubectl(t, admin, "logs", "postgres-test")
	if !regexp.MustCompile(`^\('PostgreSQL 15\.\d+ .*, 64-bit',\)\n$`).MatchString(logs) {
		t.Errorf("kubectl logs postgres-test = %q", logs)
	}
	waitFor(t, "busybox Running", func() bool {
		return kubectlOK(admin, "get", "pod", "busybox", "-o", "jsonpath={.status.phase}") == "Running"
	})
	if out := kubectl(t, admin, "exec", "busybox", "--", "sh", "-c", "echo exec-ok; ip -o -4 addr show eth0"); !strings.HasPrefix(out, "exec-ok\n") || !strings.Contains(out, "10.219.128.") {
		t.Errorf("kubectl exec output = %q", out)
	}
}

func applyPods(t *testing.T, kubeconfig string) {
	t.Helper()
	manifest := `apiVersion: v1
kind: Pod
metadata: {name: postgres-test}
spec:
  restartPolicy: Never
  containers:
  - name: postgres-test
    image: ` + images.PGCheck + `
    imagePullPolicy: Never
    env:
    - {name: HOST, value: "` + dbIP + `"}
    - {name: DATABASE, value: postgres}
    - {name: USER, value: postgres}
    - {name: PASSWORD, value: iam-token-placeholder}
---
apiVersion: v1
kind: Pod
metadata: {name: busybox}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: busybox
    image: ` + images.Busybox + `
    imagePullPolicy: Never
`
	cmd := exec.Command(filepath.Join(os.Getenv(testenv.AssetsEnv), "kubectl"), "--kubeconfig="+kubeconfig, "apply", "-f", "-")
	cmd.Stdin = strings.NewReader(manifest)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("applying pods: %v\n%s", err, out)
	}
}

func kubectlOK(kubeconfig string, args ...string) string {
	out, err := exec.Command(filepath.Join(os.Getenv(testenv.AssetsEnv), "kubectl"), append([]string{"--kubeconfig=" + kubeconfig}, args...)...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 0, func(context.Context) error {
		if !cond() {
			return fmt.Errorf("not yet: %s", what)
		}
		return nil
	})
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 6000 {
		data = data[len(data)-6000:]
	}
	return string(data)
}

// assertNoLeftovers runs after every other cleanup: no mount under the state dir, no cgroup
// of the node, no process naming the state dir.
func assertNoLeftovers(t *testing.T, stateRoot, node string) {
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), stateRoot) {
		t.Errorf("mounts left under %s", stateRoot)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/podsg/" + node); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if data, err := os.ReadFile(p); err == nil && strings.Contains(string(data), stateRoot) {
			t.Errorf("process left: %s %q", p, strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
}

// TestNodeStopAfterCrash kills containerd and the kubelet with SIGKILL while a pod runs, as a
// crash would, and checks that Stop still removes shims, containers, mounts and cgroups.
func TestNodeStopAfterCrash(t *testing.T) {
	testenv.RequireRoot(t)
	admin, opts := setupNode(t)
	waitFor(t, "node Ready", func() bool {
		return kubectlOK(admin, "get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`) == "True"
	})
	waitFor(t, "default ServiceAccount", func() bool { return kubectlOK(admin, "get", "sa", "default", "-o", "name") != "" })
	applyPods(t, admin)
	waitFor(t, "busybox Running", func() bool {
		return kubectlOK(admin, "get", "pod", "busybox", "-o", "jsonpath={.status.phase}") == "Running"
	})
	for _, d := range []string{"kubelet", "containerd"} {
		data, err := os.ReadFile(filepath.Join(opts.StateDir, "run", d+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		pid := strings.TrimSpace(string(data))
		ct.Run(t, "kill", "-9", pid)
		// A crash is over once the kernel has reaped the process or left a zombie; only then
		// does the node look crashed to Stop.
		waitFor(t, d+" dead", func() bool {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil {
				return true
			}
			i := strings.LastIndexByte(string(stat), ')')
			return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
		})
	}
	// The cleanup registered by setupNode stops the node; assertNoLeftovers then checks it.
}
