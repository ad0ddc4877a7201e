package kernel

import (
	"context"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/resolver"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestBranchENI: a pod wired through the trunk's VLAN 7 sub-interface, as
// the CNI does it, is subject to the branch ENI's groups: the server allows
// the branch's group and not the instance's, so the pod gets through and
// the instance itself does not.
func TestBranchENI(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.72.0.0/16")
	sub := e.subnet(vpc, "10.72.1.0/24")
	sgNode, sgPod, sgS := e.group(vpc, "node"), e.group(vpc, "pod"), e.group(vpc, "server")
	e.ingress(sgS, "tcp", 8000, 8000, sgPod)
	node, _ := e.instance(sub, sgNode)
	s, ipS := e.instance(sub, sgS)
	trunk := e.eni(sub, types.NetworkInterfaceCreationTypeTrunk, nil, sgNode)
	if _, err := e.ec2.AttachNetworkInterface(context.Background(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: trunk.NetworkInterfaceId, InstanceId: aws.String(node), DeviceIndex: aws.Int32(1),
	}); err != nil {
		t.Fatalf("AttachNetworkInterface: %v", err)
	}
	branch := e.eni(sub, types.NetworkInterfaceCreationTypeBranch, nil, sgPod)
	if _, err := e.ec2.AssociateTrunkInterface(context.Background(), &ec2.AssociateTrunkInterfaceInput{
		BranchInterfaceId: branch.NetworkInterfaceId, TrunkInterfaceId: trunk.NetworkInterfaceId, VlanId: aws.Int32(7),
	}); err != nil {
		t.Fatalf("AssociateTrunkInterface: %v", err)
	}
	vpctest.ServeTCP(t, e.dp.names.Instance(s), net.JoinHostPort(ipS, "8000"))

	nodeNS := e.dp.names.Instance(node)
	pod := "podsgtest-" + e.id + "-pod"
	podIP := netip.MustParseAddr(*branch.PrivateIpAddress)
	wireBranchPod(t, nodeNS, pod, "eth1", netip.MustParsePrefix("10.72.1.0/24"), 7, *branch.MacAddress, podIP)

	if err := tcpProbe(pod, net.JoinHostPort(ipS, "8000")); err != nil {
		t.Errorf("pod (branch group allowed) -> server: %v", err)
		for _, args := range [][]string{{"ip", "-d", "addr"}, {"ip", "rule"}, {"ip", "route", "show", "table", "all"}} {
			out, _ := exec.Command("ip", append([]string{"netns", "exec", nodeNS}, args...)...).CombinedOutput()
			t.Logf("DEBUG %v:\n%s", args, out)
		}
	}
	if err := tcpProbe(nodeNS, net.JoinHostPort(ipS, "8000")); err == nil {
		t.Errorf("instance primary ENI (group not allowed) -> server passed")
	}
	// Everything the pod sends leaves through its branch, into the fabric: the VPC resolver
	// answers it there, whatever its groups.
	if testenv.Dig.Missing() == "" {
		out, err := exec.Command("ip", "netns", "exec", pod, "dig", "+short", "+time=2", "@10.72.0.2", state.PrivateDNSName(region, ipS)).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != ipS {
			t.Errorf("pod -> the VPC resolver through its branch: %q, %v; want %s", got, err, ipS)
		}
	}
	// The interface endpoint: sts.REGION.amazonaws.com names a VPC address in the fabric, which
	// the pod reaches through its branch as the node reaches it through its primary ENI
	// (169.254.169.254 is its node's, out of the pod's reach).
	stsURL := "http://" + resolver.ServiceEndpoint("sts", region)
	expectSTSThroughEndpoint(t, pod, "10.72.0.2", stsURL)
	expectSTSThroughEndpoint(t, nodeNS, "10.72.0.2", stsURL)
	// The pod cannot borrow the instance's address: the source check drops it.
	if err := pingProbe(pod, ipS); err == nil {
		t.Errorf("pod icmp -> server passed without a rule")
	}
}

// wireBranchPod runs the node side exactly as the CNI plugin does (internal/podnet, vxlan
// driver, strict mode), so this test checks the real CNI code against the real fabric.
func wireBranchPod(t *testing.T, nodeNS, pod, trunkIf string, subnet netip.Prefix, vlan int, mac string, podIP netip.Addr) {
	t.Helper()
	if err := namespace.Create(pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = namespace.Delete(pod) })
	must(t, namespace.Sysctl(nodeNS, "net.ipv4.ip_forward", "1"))
	rec := &podstate.Record{Version: podstate.Version, ContainerID: "branch-test", IfName: "eth0", PodNamespace: "default",
		PodName: "pod", Kind: podstate.KindBranch, IP: podIP, Gateway: topo.Gateway(subnet),
		HostVeth: podnet.HostVethName("vlan", "default", "pod"), VLAN: vlan, BranchMAC: mac, SubnetCIDR: subnet.String(),
		SubInterface: podnet.SubInterfaceName(vlan), TrunkLink: trunkIf, RouteTable: 100 + vlan, Mode: podstate.ModeStrict,
		TrunkGateway: topo.Gateway(subnet)}
	must(t, namespace.Do(nodeNS, func() error {
		_, err := podnet.Add(namespace.Path(pod), rec, podnet.Options{MTU: topo.ENIMTU, Driver: podnet.VXLAN{Port: topo.VXLANPort}})
		return err
	}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
