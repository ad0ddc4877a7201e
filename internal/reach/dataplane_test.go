package reach_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podsg/podsg/internal/cloud"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/reach"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/kernel"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// probeTimeout bounds a probe the fabric drops; the probes run in parallel, so it is what the
// whole matrix costs, and an allowed probe answers in milliseconds.
const probeTimeout = time.Second

// TestVerdictsMatchTheDataPath is the differential test: a local VPC with the netns data path,
// three instances whose groups use every kind of rule, and for every ordered pair and flow
// of a matrix, reach's verdict must be what real packets through the fabric's nftables do.
func TestVerdictsMatchTheDataPath(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.IPRoute2, testenv.Ping)
	names := topo.Names{ID: testID()}
	dp, err := kernel.New(kernel.Options{ID: names.ID, Region: vpctest.Region, Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // registered first, so it runs after the API server stops
		_ = dp.Close()
		if err := kernel.Cleanup(names.ID); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if left, _ := namespace.List(names.Prefix()); len(left) > 0 {
			t.Errorf("namespaces left: %v", left)
		}
	})
	env := vpctest.Start(t, vpctest.Options{Applier: dp})
	v := newVPCBuilder(t, env)

	vpc := *env.NewVPC(t, "10.73.0.0/16").VpcId
	sub1, sub2 := *env.NewSubnet(t, vpc, "10.73.1.0/24").SubnetId, *env.NewSubnet(t, vpc, "10.73.2.0/24").SubnetId
	sgA, sgB, sgB2 := env.NewGroup(t, vpc, "a"), env.NewGroup(t, vpc, "b"), env.NewGroup(t, vpc, "b2")
	sgS, sgS2 := env.NewGroup(t, vpc, "s"), env.NewGroup(t, vpc, "s2")
	vpctest.Ingress(t, env.Client, sgS, "tcp", 8000, 8010, sgA)            // group reference, port range
	vpctest.Ingress(t, env.Client, sgS, "udp", 9000, 9000, "10.73.2.0/24") // CIDR: B's subnet, not A's
	vpctest.Ingress(t, env.Client, sgS, "icmp", 8, -1, sgA)                // echo request, any code
	vpctest.Ingress(t, env.Client, sgS, "tcp", 8020, 8020, sgB)
	vpctest.Ingress(t, env.Client, sgS2, "tcp", 7000, 7000, "0.0.0.0/0") // a second group on S: the union counts
	vpctest.Ingress(t, env.Client, sgA, "tcp", 8000, 8000, sgS)
	// B's egress is restricted: its default rule goes, and each of its two groups allows a little.
	if _, err := env.Client.RevokeSecurityGroupEgress(t.Context(), &awsec2.RevokeSecurityGroupEgressInput{
		GroupId: aws.String(sgB), IpPermissions: []types.IpPermission{vpctest.Permission("-1", -1, -1, "0.0.0.0/0")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Client.RevokeSecurityGroupEgress(t.Context(), &awsec2.RevokeSecurityGroupEgressInput{
		GroupId: aws.String(sgB2), IpPermissions: []types.IpPermission{vpctest.Permission("-1", -1, -1, "0.0.0.0/0")},
	}); err != nil {
		t.Fatal(err)
	}
	vpctest.Egress(t, env.Client, sgB, "tcp", 8000, 8000, "0.0.0.0/0")
	vpctest.Egress(t, env.Client, sgB, "udp", 9000, 9000, sgS) // egress group reference
	vpctest.Egress(t, env.Client, sgB2, "tcp", 8020, 8020, "10.73.1.0/24")

	hosts := []*host{v.instance("A", sub1, sgA), v.instance("B", sub2, sgB, sgB2), v.instance("S", sub1, sgS, sgS2)}
	tcpPorts := []int{7000, 7999, 8000, 8005, 8010, 8011, 8020}
	for _, h := range hosts {
		h.ns = names.Instance(h.instance)
		expectNoRootEscape(t, h.ip)
		for _, p := range tcpPorts {
			vpctest.ServeTCP(t, h.ns, net.JoinHostPort(h.ip, strconv.Itoa(p)))
		}
		vpctest.ServeUDP(t, h.ns, net.JoinHostPort(h.ip, "9000"))
	}
	flows := []reach.Flow{{Protocol: cloud.ProtocolUDP, Port: 9000}, {Protocol: cloud.ProtocolICMP, ICMPType: 8}}
	for _, p := range tcpPorts {
		flows = append(flows, reach.Flow{Protocol: cloud.ProtocolTCP, Port: p})
	}

	type cell struct {
		name           string
		reach, packets bool
	}
	var (
		mu    sync.Mutex
		cells []cell
		wg    sync.WaitGroup
	)
	for _, src := range hosts {
		for _, dst := range hosts {
			if src == dst {
				continue
			}
			// The source by ENI id, the destination by address: both ways Load resolves.
			in, err := reach.Load(t.Context(), v.c, nil, src.eni, dst.ip)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range flows {
				verdict := reach.Evaluate(in, f).Allowed
				name := fmt.Sprintf("%s->%s %s", src.name, dst.name, f)
				wg.Go(func() {
					passed, err := probe(src.ns, dst.ip, f)
					if err != nil {
						t.Errorf("%s: the probe could not decide: %v", name, err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					cells = append(cells, cell{name, verdict, passed})
				})
			}
		}
	}
	wg.Wait()

	allowed := 0
	for _, c := range cells {
		if c.reach != c.packets {
			t.Errorf("%s: reach says allowed=%v, the packets were allowed=%v", c.name, c.reach, c.packets)
		}
		if c.packets {
			allowed++
		}
	}
	// What the rules above were written to allow; every other cell is denied. Checked too, so
	// that reach and the data path agreeing on something wrong (or on nothing) fails.
	want := map[string]bool{
		"A->S tcp 8000":           true, // group reference
		"A->S tcp 8005":           true, // inside the range
		"A->S tcp 8010":           true, // range end (8011 and 7999 are not)
		"A->S tcp 7000":           true, // S's second group
		"A->S icmp type 8 code 0": true,
		"B->S udp 9000":           true, // CIDR in, egress group reference out (A is outside the CIDR)
		"B->S tcp 8020":           true, // egress of B's second group (B's 7000 and ICMP are not allowed out)
		"S->A tcp 8000":           true, // A admits S's group (B's 8000 leaves B, not into A)
	}
	for _, c := range cells {
		if c.packets != want[c.name] {
			t.Errorf("%s: packets allowed=%v, the rules say %v", c.name, c.packets, want[c.name])
		}
	}
	if len(cells) != 6*len(flows) || allowed != len(want) {
		t.Errorf("%d cells decided (%d allowed), want %d (%d allowed)", len(cells), allowed, 6*len(flows), len(want))
	}
	t.Logf("%d flows, %d allowed, reach agreed on all", len(cells), allowed)

	checkServices(t, v, hosts[0], hosts[1], hosts[2])
}

// checkServices extends the matrix to Services: kube-proxy's translation happens on the
// source's node, so the source namespace gets a DNAT as kube-proxy's nftables mode writes it
// for a node's own traffic (nat output), and the packet then meets the backend's groups. Each
// Service has one backend, so that the backend a packet goes to is known; reach.Backends reads
// it and its port from the Service and its endpoint slice, as kube-proxy does, and reach's
// verdict on that backend must be what the packets to the ClusterIP do.
func checkServices(t *testing.T, v *vpcBuilder, a, b, s *host) {
	t.Helper()
	testenv.Require(t, testenv.NFTables)
	type service struct {
		clusterIP    string
		port, target int32
	}
	svcs := []service{{"10.73.200.10", 80, 8000}, {"10.73.200.11", 81, 8020}}
	var nat strings.Builder
	nat.WriteString("table ip reach_kube_proxy {\n chain output {\n  type nat hook output priority -100; policy accept;\n")
	for _, svc := range svcs {
		fmt.Fprintf(&nat, "  ip daddr %s tcp dport %d dnat to %s:%d\n", svc.clusterIP, svc.port, s.ip, svc.target)
	}
	nat.WriteString(" }\n}\n")
	for _, src := range []*host{a, b} {
		cmd := exec.Command("ip", "netns", "exec", src.ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(nat.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft in %s: %v\n%s", src.ns, err, out)
		}
	}
	want := map[string]bool{"A->svc:80": true, "B->svc:81": true} // S admits A on 8000, B on 8020 (B's 8000 is not admitted, A's 8020 neither)
	got := 0
	for _, svc := range svcs {
		name, proto, port := "web", corev1.ProtocolTCP, svc.target
		k8sSvc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{ClusterIP: svc.clusterIP,
			Ports: []corev1.ServicePort{{Name: name, Port: svc.port, Protocol: proto, TargetPort: intstr.FromInt32(svc.target)}}}}
		slice := discoveryv1.EndpointSlice{AddressType: discoveryv1.AddressTypeIPv4,
			Ports:     []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{s.ip}}}}
		f := reach.Flow{Protocol: cloud.ProtocolTCP, Port: int(svc.port)}
		route, err := reach.Backends(k8sSvc, []discoveryv1.EndpointSlice{slice}, f)
		backends := route.Backends
		if err != nil || len(backends) != 1 {
			t.Fatalf("backends of %s: %v, %v", svc.clusterIP, backends, err)
		}
		for _, src := range []*host{a, b} {
			in, err := reach.Load(t.Context(), v.c, nil, src.eni, backends[0].Spec)
			if err != nil {
				t.Fatal(err)
			}
			verdict := reach.Evaluate(in, reach.Flow{Protocol: cloud.ProtocolTCP, Port: backends[0].Port}).Allowed
			passed, err := vpctest.Probe(src.ns, "", svc.clusterIP, "tcp", int(svc.port), probeTimeout)
			cell := fmt.Sprintf("%s->svc:%d", src.name, svc.port)
			switch {
			case err != nil:
				t.Errorf("%s: the probe could not decide: %v", cell, err)
			case verdict != passed:
				t.Errorf("%s: reach says allowed=%v for backend %s:%d, the packets to %s were allowed=%v", cell, verdict, s.ip, backends[0].Port, svc.clusterIP, passed)
			case passed != want[cell]:
				t.Errorf("%s: packets allowed=%v, the rules say %v", cell, passed, want[cell])
			default:
				got++
			}
		}
	}
	t.Logf("%d Service flows through a DNAT, reach agreed on %d", 2*len(svcs), got)
}

func testID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)[:5]
}

// vpcBuilder makes the VPC's rules and instances through the API the data path applies.
type vpcBuilder struct {
	t   *testing.T
	env *vpctest.Env
	c   *cloudec2.Client
}

type host struct {
	name, instance, eni, ip, ns string
}

func newVPCBuilder(t *testing.T, env *vpctest.Env) *vpcBuilder {
	t.Helper()
	c := env.CloudClient(t, nil)
	return &vpcBuilder{t: t, env: env, c: c}
}

func (v *vpcBuilder) instance(name, subnet string, groups ...string) *host {
	v.t.Helper()
	out, err := v.env.Client.RunInstances(v.t.Context(), &awsec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Large, SubnetId: aws.String(subnet),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SecurityGroupIds: groups,
	})
	if err != nil {
		v.t.Fatalf("RunInstances: %v", err)
	}
	i := out.Instances[0]
	return &host{name: name, instance: *i.InstanceId, eni: *i.NetworkInterfaces[0].NetworkInterfaceId, ip: *i.PrivateIpAddress}
}

// probe sends the flow from inside ns to ip and reports whether it got through (vpctest.Probe
// and vpctest.Ping say what counts as an answer, a drop and an error).
func probe(ns, ip string, f reach.Flow) (bool, error) {
	if f.Protocol == cloud.ProtocolICMP {
		return vpctest.Ping(ns, "", ip, probeTimeout)
	}
	return vpctest.Probe(ns, "", ip, f.Protocol, f.Port, probeTimeout)
}

// expectNoRootEscape checks with `ip route get` (never a connection) that the root namespace
// would not send ip out of the machine.
func expectNoRootEscape(t *testing.T, ip string) {
	t.Helper()
	out, _ := exec.Command("ip", "route", "get", ip).CombinedOutput()
	if s := string(out); strings.Contains(s, " via ") || strings.Contains(s, "dev eth0") {
		t.Fatalf("root namespace would route %s out of the machine: %s", ip, s)
	}
}
