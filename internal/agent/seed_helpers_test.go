package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/resolver"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/agent"
	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/testenv"
)

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func createDB(t *testing.T, w *world, group string) string {
	t.Helper()
	c := rds.New(rds.Options{Region: "us-west-2", BaseEndpoint: aws.String(w.apiURL), RetryMaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	out := must(c.CreateDBInstance(t.Context(), &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("seed-db"),
		Engine: aws.String("postgres"), DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("postgres"),
		MasterUserPassword: aws.String("secretpass"), DBName: aws.String("postgres"), VpcSecurityGroupIds: []string{group}}))(t)
	return *out.DBInstance.Endpoint.Address
}

// forward relays TCP from listenIP (an address the root namespace has in the VPC) to target
// on loopback, standing in for a service reachable from the VPC. It returns host:port. Each
// relayed connection ends as soon as either side closes, and all end at cleanup, so that the
// API server's shutdown never waits on a watch the relay keeps open.
func forward(t *testing.T, listenIP, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(listenIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	track := func(c net.Conn, add bool) {
		mu.Lock()
		defer mu.Unlock()
		if add {
			open[c] = struct{}{}
		} else {
			delete(open, c)
		}
	}
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range open {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go relay(c, target, track)
		}
	}()
	return l.Addr().String()
}

func relay(c net.Conn, target string, track func(net.Conn, bool)) {
	up, err := net.Dial("tcp", target)
	if err != nil {
		_ = c.Close()
		return
	}
	track(c, true)
	track(up, true)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	_, _ = c.Close(), up.Close()
	track(c, false)
	track(up, false)
}

// instance launches the node and returns its namespace.
func (w *world) instance(t *testing.T, typ types.InstanceType) string {
	t.Helper()
	out := must(w.ec2.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: typ,
		SubnetId: &w.sub, SecurityGroupIds: []string{w.sgNode}, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}))(t)
	id := *out.Instances[0].InstanceId
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + id}}
	if err := w.kube.Client.Create(t.Context(), node); err != nil {
		t.Fatal(err)
	}
	return w.names.Instance(id)
}

// startAgent runs the built podsg-agent inside the instance, as the local cluster does; with
// podENI it serves branch pods and asks for a trunk.
func (w *world) startAgent(t *testing.T, nodeNS string, podENI bool, extra ...string) {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "agent.kubeconfig")
	cfg, err := clientcmd.LoadFromFile(w.kube.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		// Reached through the forwarder; the serving certificate names localhost.
		c.Server, c.TLSServerName = w.kubeURL, "localhost"
	}
	if err := clientcmd.WriteToFile(*cfg, kubeconfig); err != nil {
		t.Fatal(err)
	}
	agentBin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-agent")
	cniBin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-cni")
	args := []string{"netns", "exec", nodeNS, agentBin, "--node-name=node-1", "--kubeconfig=" + kubeconfig,
		"--ec2-endpoint=" + w.ec2URL, "--subif-driver=vxlan", "--state-dir=" + w.podState, "--socket=" + w.socket,
		"--cni-bin-source=" + cniBin, "--cni-bin-dir=" + w.binDir, "--cni-conf-dir=" + w.confDir, "--annotation-wait=10s"}
	if podENI {
		args = append(args, "--enable-pod-eni")
	}
	_ = os.Remove(w.socket) // a killed agent's: wait for the new one's
	p, err := testenv.StartProcess(t, "ip", append(args, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.agent = p
	testenv.Eventually(t, 0, func(ctx context.Context) error {
		if err := p.ExitErr(); err != nil {
			return testenv.Abort(fmt.Errorf("the agent: %w\n%s", err, p.LogTail()))
		}
		if _, err := os.Stat(w.socket); err != nil {
			return fmt.Errorf("the agent does not serve yet: %w; its log so far:\n%s", err, p.LogTail())
		}
		n := &corev1.Node{}
		if err := w.kube.Client.Get(ctx, client.ObjectKey{Name: "node-1"}, n); err != nil {
			return testenv.Abort(err)
		}
		if podENI && n.Labels[v1beta1.LabelHasTrunkAttached] != "false" {
			return fmt.Errorf("the agent has not asked for a trunk yet: %s=%q", v1beta1.LabelHasTrunkAttached, n.Labels[v1beta1.LabelHasTrunkAttached])
		}
		return nil
	})
}

// attachTrunk does podsg-controller's part for the node: a trunk ENI at device index 1.
func (w *world) attachTrunk(t *testing.T, nodeNS string) {
	t.Helper()
	id := strings.TrimPrefix(nodeNS, w.names.Prefix())
	trunk := must(w.ec2.CreateNetworkInterface(t.Context(), &ec2.CreateNetworkInterfaceInput{SubnetId: &w.sub,
		InterfaceType: types.NetworkInterfaceCreationTypeTrunk, Groups: []string{w.sgNode}}))(t)
	w.trunkID = *trunk.NetworkInterface.NetworkInterfaceId
	must(w.ec2.AttachNetworkInterface(t.Context(), &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: &w.trunkID,
		InstanceId: &id, DeviceIndex: aws.Int32(1)}))(t)
}

// branchENI does podsg-controller's part for the pod: a branch ENI in the client group on VLAN 1.
func (w *world) branchENI(t *testing.T, _ string) v1beta1.PodENI {
	t.Helper()
	eni := must(w.ec2.CreateNetworkInterface(t.Context(), &ec2.CreateNetworkInterfaceInput{SubnetId: &w.sub,
		InterfaceType: types.NetworkInterfaceCreationTypeBranch, Groups: []string{w.sgClient}}))(t).NetworkInterface
	a := must(w.ec2.AssociateTrunkInterface(t.Context(), &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: eni.NetworkInterfaceId,
		TrunkInterfaceId: &w.trunkID, VlanId: aws.Int32(1)}))(t)
	return v1beta1.PodENI{ENIID: *eni.NetworkInterfaceId, IfAddress: *eni.MacAddress, PrivateIP: *eni.PrivateIpAddress, VLANID: 1,
		SubnetCIDR: "10.77.0.0/20", AssociationID: *a.InterfaceAssociation.AssociationId}
}

// pod creates a pod bound to node-1; a branch pod carries the webhook's pod-eni request.
func (w *world) pod(t *testing.T, name string, branch bool) *corev1.Pod {
	t.Helper()
	c := corev1.Container{Name: "app", Image: "podsg.local/pgcheck:latest"}
	if branch {
		one := corev1.ResourceList{corev1.ResourceName(v1beta1.ResourcePodENI): resource.MustParse("1")}
		c.Resources = corev1.ResourceRequirements{Requests: one, Limits: one}
	}
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{c}}}
	if err := w.kube.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// annotate writes the AWS-format annotation, as either controller would.
func (w *world) annotate(t *testing.T, pod *corev1.Pod, eni v1beta1.PodENI) {
	t.Helper()
	value, err := v1beta1.MarshalPodENIs([]v1beta1.PodENI{eni})
	if err != nil {
		t.Fatal(err)
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{v1beta1.AnnotationPodENI: value}}})
	if err := w.kube.Client.Patch(t.Context(), pod, client.RawPatch("application/merge-patch+json", patch)); err != nil {
		t.Fatal(err)
	}
}

func newNetNS(t *testing.T) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close(); _ = testutils.UnmountNS(n) })
	return n
}

func (w *world) runtimeConf(podNS ns.NetNS, pod *corev1.Pod) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: "c-" + pod.Name, NetNS: podNS.Path(), IfName: "eth0", Args: [][2]string{
		{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", pod.Namespace}, {"K8S_POD_NAME", pod.Name}, {"K8S_POD_UID", string(pod.UID)}}}
}

// inNode runs fn from the instance's namespace: the runtime calls the plugin there.
func (w *world) inNode(t *testing.T, nodeNS string, fn func(*libcni.CNIConfig, *libcni.NetworkConfigList) error) error {
	t.Helper()
	list, err := libcni.ConfListFromFile(filepath.Join(w.confDir, agent.ConflistName))
	if err != nil {
		t.Fatal(err)
	}
	cni := libcni.NewCNIConfig([]string{w.binDir}, nil)
	return ns.WithNetNSPath("/run/netns/"+nodeNS, func(ns.NetNS) error { return fn(cni, list) })
}

func (w *world) cniAdd(t *testing.T, nodeNS string, podNS ns.NetNS, pod *corev1.Pod) {
	t.Helper()
	err := w.inNode(t, nodeNS, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
		_, err := c.AddNetworkList(context.WithoutCancel(t.Context()), l, w.runtimeConf(podNS, pod))
		return err
	})
	if err != nil {
		t.Fatalf("CNI ADD %s: %v\nagent log:\n%s", pod.Name, err, w.agent.LogTail())
	}
}

func (w *world) cniCheck(t *testing.T, nodeNS string, podNS ns.NetNS, pod *corev1.Pod) {
	t.Helper()
	err := w.inNode(t, nodeNS, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
		return c.CheckNetworkList(context.WithoutCancel(t.Context()), l, w.runtimeConf(podNS, pod))
	})
	if err != nil {
		t.Fatalf("CNI CHECK %s: %v", pod.Name, err)
	}
}

func (w *world) cniDel(t *testing.T, nodeNS string, podNS ns.NetNS, pod *corev1.Pod) {
	t.Helper()
	err := w.inNode(t, nodeNS, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
		return c.DelNetworkList(context.WithoutCancel(t.Context()), l, w.runtimeConf(podNS, pod))
	})
	if err != nil {
		t.Fatalf("CNI DEL %s: %v", pod.Name, err)
	}
}

// pgcheck runs the seed's test app inside the pod's namespace and returns what it printed.
func (w *world) pgcheck(t *testing.T, podNS ns.NetNS) string {
	t.Helper()
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/pgcheck")
	// The database's endpoint is a hostname, which the VPC's resolver answers: the pod asks it
	// as a pod with dnsPolicy Default does on a node whose DHCP options name it (there is no
	// CoreDNS here). `ip netns exec` puts this file in place of /etc/resolv.conf.
	confDir := namespace.ConfigDir(filepath.Base(podNS.Path()))
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(confDir) })
	conf := "nameserver " + resolver.Address(netip.MustParsePrefix(seedVPCCIDR)).String() + "\n"
	if err := os.WriteFile(filepath.Join(confDir, "resolv.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", filepath.Base(podNS.Path()), bin)
	cmd.Env = []string{"HOST=" + w.dbHost, "DATABASE=postgres", "USER=postgres", "PASSWORD=secretpass"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pgcheck: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// expectNodeClean checks that no pod device, rule or record is left on the node.
func (w *world) expectNodeClean(t *testing.T, nodeNS string) {
	t.Helper()
	err := ns.WithNetNSPath("/run/netns/"+nodeNS, func(ns.NetNS) error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			if n := l.Attrs().Name; strings.HasPrefix(n, "vlan") || strings.HasPrefix(n, "eni") {
				t.Errorf("link %s left on the node", n)
			}
		}
		rules, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range rules {
			if r.Table > 100 && r.Table < 253 || r.Priority == podnet.PriorityToPod || r.Priority == podnet.PriorityFromPod {
				t.Errorf("rule %s left on the node", r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(w.podState)
	var left []string
	for _, e := range entries {
		if !strings.Contains(e.Name(), ".corrupt-") { // set aside for the operator, not a record
			left = append(left, e.Name())
		}
	}
	if len(left) != 0 {
		t.Errorf("pod records left in %s: %v", w.podState, left)
	}
}
