package kernel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
)

// TestIMDSHopLimit: the token reply carries HttpPutResponseHopLimit as its
// IP TTL and the instance forwards it like any router, so with EC2's
// default of 1 a pod (one routed hop behind the instance, wired by the CNI
// code) gets no token while the instance does; after
// ModifyInstanceMetadataOptions sets 2, the pod gets one too.
func TestIMDSHopLimit(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.76.0.0/16")
	sub := e.subnet(vpc, "10.76.1.0/24")
	id, _ := e.instance(sub, e.group(vpc, "a"))
	nodeNS := e.dp.names.Instance(id)
	pod := "podsgtest-" + e.id + "-pod"
	wireRegularPod(t, e, id, nodeNS, pod)

	const tokenPath = "/latest/api/token"
	instance, fromPod := imdsClient(nodeNS), imdsClient(pod)
	if _, err := putToken(instance); err != nil {
		t.Fatalf("instance, hop limit 1: %v", err)
	}
	// The pod reaches IMDS (IMDSv1 answers are not limited), but the token
	// reply dies on the way: the client sees no answer, not a refusal.
	if got, err := getMetadata(fromPod, "", "instance-id"); err != nil || got != id {
		t.Fatalf("pod, IMDSv1: %q %v", got, err)
	}
	if _, err := putToken(fromPod); !isTimeout(err) {
		t.Fatalf("pod, hop limit 1: PUT %s = %v, want no answer", tokenPath, err)
	}

	if _, err := e.ec2.ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(id), HttpPutResponseHopLimit: aws.Int32(2),
	}); err != nil {
		t.Fatalf("ModifyInstanceMetadataOptions: %v", err)
	}
	tok, err := putToken(fromPod)
	if err != nil {
		t.Fatalf("pod, hop limit 2: %v", err)
	}
	if got, err := getMetadata(fromPod, tok, "instance-id"); err != nil || got != id {
		t.Fatalf("pod, IMDSv2 with its token: %q %v", got, err)
	}
	if _, err := putToken(instance); err != nil {
		t.Fatalf("instance, hop limit 2: %v", err)
	}
}

// wireRegularPod gives the pod a secondary address of the instance's
// primary ENI, wired as the CNI plugin wires a regular pod (internal/podnet).
func wireRegularPod(t *testing.T, e *env, instanceID, nodeNS, pod string) {
	t.Helper()
	out, err := e.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		t.Fatal(err)
	}
	eni := out.Reservations[0].Instances[0].NetworkInterfaces[0].NetworkInterfaceId
	assigned, err := e.ec2.AssignPrivateIpAddresses(context.Background(), &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	podIP := netip.MustParseAddr(*assigned.AssignedPrivateIpAddresses[0].PrivateIpAddress)
	if err := namespace.Create(pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = namespace.Delete(pod) })
	must(t, namespace.Sysctl(nodeNS, "net.ipv4.ip_forward", "1"))
	rec := &podstate.Record{Version: podstate.Version, ContainerID: "hop-test", IfName: "eth0", PodNamespace: "default",
		PodName: "pod", Kind: podstate.KindRegular, IP: podIP, HostVeth: podnet.HostVethName("eni", "default", "pod")}
	must(t, namespace.Do(nodeNS, func() error {
		_, err := podnet.Add(namespace.Path(pod), rec, podnet.Options{MTU: topo.ENIMTU})
		return err
	}))
}

// imdsClient is an HTTP client whose connections start in namespace ns,
// one per request, with a short timeout: a reply that never comes fails
// fast.
func imdsClient(ns string) *http.Client {
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = namespace.Do(ns, func() error { c, err = (&net.Dialer{}).DialContext(ctx, network, addr); return err })
		return c, err
	}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
}

func imdsDo(c *http.Client, method, path string, header map[string]string) (string, error) {
	req, err := http.NewRequest(method, "http://"+IMDSAddr.String()+path, nil)
	if err != nil {
		return "", err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", errors.New(resp.Status + ": " + strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func putToken(c *http.Client) (string, error) {
	return imdsDo(c, http.MethodPut, "/latest/api/token", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "60"})
}

func getMetadata(c *http.Client, token, path string) (string, error) {
	h := map[string]string{}
	if token != "" {
		h["X-Aws-Ec2-Metadata-Token"] = token
	}
	return imdsDo(c, http.MethodGet, "/latest/meta-data/"+path, h)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestIMDSBranchENI: a pod on a branch ENI (strict mode, everything it sends leaves through
// its branch into the fabric) reaches 169.254.169.254 as on EC2, where metadata answers on
// every ENI of an instance, and gets its trunk's instance's metadata; the hop limit governs
// its token reply exactly as for a pod behind the primary ENI, and the token is the
// instance's, good on the instance's own listener too.
func TestIMDSBranchENI(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.77.0.0/16")
	sub := e.subnet(vpc, "10.77.1.0/24")
	sg := e.group(vpc, "node")
	node, _ := e.instance(sub, sg)
	other, _ := e.instance(sub, sg) // a second instance: the answer must name the trunk's
	trunk := e.eni(sub, types.NetworkInterfaceCreationTypeTrunk, nil, sg)
	if _, err := e.ec2.AttachNetworkInterface(context.Background(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: trunk.NetworkInterfaceId, InstanceId: aws.String(node), DeviceIndex: aws.Int32(1),
	}); err != nil {
		t.Fatalf("AttachNetworkInterface: %v", err)
	}
	branch := e.eni(sub, types.NetworkInterfaceCreationTypeBranch, nil, sg)
	if _, err := e.ec2.AssociateTrunkInterface(context.Background(), &ec2.AssociateTrunkInterfaceInput{
		BranchInterfaceId: branch.NetworkInterfaceId, TrunkInterfaceId: trunk.NetworkInterfaceId, VlanId: aws.Int32(3),
	}); err != nil {
		t.Fatalf("AssociateTrunkInterface: %v", err)
	}
	nodeNS := e.dp.names.Instance(node)
	moveLocalRule(t, nodeNS)
	pod := "podsgtest-" + e.id + "-bpod"
	wireBranchPod(t, nodeNS, pod, "eth1", netip.MustParsePrefix("10.77.1.0/24"), 3, *branch.MacAddress,
		netip.MustParseAddr(*branch.PrivateIpAddress))

	fromPod, instance := imdsClient(pod), imdsClient(nodeNS)
	if got, err := getMetadata(fromPod, "", "instance-id"); err != nil || got != node {
		t.Fatalf("branch pod, IMDSv1 instance-id = %q, %v; want its trunk's instance %s (not %s)", got, err, node, other)
	}
	if got, err := getMetadata(fromPod, "", "network/interfaces/macs/"+*trunk.MacAddress+"/interface-id"); err != nil || got != *trunk.NetworkInterfaceId {
		t.Errorf("branch pod, the trunk's interface-id = %q, %v; want %s", got, err, *trunk.NetworkInterfaceId)
	}
	// Hop limit 1 (EC2's default): the reply reaches the instance through the trunk, which
	// would have to forward it to the pod with no hop left.
	if _, err := putToken(fromPod); !isTimeout(err) {
		t.Fatalf("branch pod, hop limit 1: token = %v, want no answer", err)
	}
	if _, err := e.ec2.ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(node), HttpPutResponseHopLimit: aws.Int32(2),
	}); err != nil {
		t.Fatalf("ModifyInstanceMetadataOptions: %v", err)
	}
	tok, err := putToken(fromPod)
	if err != nil {
		t.Fatalf("branch pod, hop limit 2: %v", err)
	}
	if got, err := getMetadata(fromPod, tok, "instance-id"); err != nil || got != node {
		t.Errorf("branch pod, IMDSv2 with its token: %q %v", got, err)
	}
	if got, err := getMetadata(instance, tok, "instance-id"); err != nil || got != node {
		t.Errorf("the instance itself, with the token its pod got through the trunk: %q %v", got, err)
	}
	// HttpTokens=required applies on the branch path too.
	if _, err := e.ec2.ModifyInstanceMetadataOptions(context.Background(), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(node), HttpTokens: types.HttpTokensStateRequired,
	}); err != nil {
		t.Fatalf("ModifyInstanceMetadataOptions: %v", err)
	}
	if _, err := getMetadata(fromPod, "", "instance-id"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("branch pod, IMDSv1 with tokens required = %v, want 401", err)
	}
}

// moveLocalRule does in nodeNS what the agent does on a node in strict mode
// (internal/agent/node.go): the local table's rule moves from priority 0 to 20, behind the
// branch pods' priority-10 rules, so that a branch pod's packets to an address local to its
// node (169.254.169.254 here) still leave through its branch.
func moveLocalRule(t *testing.T, nodeNS string) {
	t.Helper()
	must(t, namespace.Do(nodeNS, func() error {
		r := netlink.NewRule()
		r.Table, r.Priority = unix.RT_TABLE_LOCAL, 20
		if err := netlink.RuleAdd(r); err != nil {
			return err
		}
		old := netlink.NewRule()
		old.Table, old.Priority = unix.RT_TABLE_LOCAL, 0
		return netlink.RuleDel(old)
	}))
}
