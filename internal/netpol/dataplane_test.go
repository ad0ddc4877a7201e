package netpol_test

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/cluster/clustertest"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// probeTimeout bounds a probe the ruleset drops; probes run in parallel, so it is about what
// the whole matrix costs, and an allowed probe answers in milliseconds.
const probeTimeout = time.Second

// hostEnd is one end of the rig: a pod, or the outside world, in its own namespace behind a
// veth whose other side is in the node's namespace.
type hostEnd struct {
	name, ns, hostIf string
	ips              []string
	pod              *netpol.Pod
	node             *netpol.Node // the node itself, in its own namespace
}

// TestCompiledRulesMatchTheEvaluator is the differential test of the compiler: a node
// namespace routes between three pods and an outside host (two addresses, one inside an
// ipBlock's except), each in its own namespace behind a veth; the compiled ruleset goes on the
// node, and for every ordered pair and flow, the node itself included (its address is the
// pods' gateway), the evaluator's verdict must be what real packets do. TCP probes read the server's answer and UDP probes its echo, so each allowed probe also
// shows that the return traffic got through, including where the reverse direction is denied.
func TestCompiledRulesMatchTheEvaluator(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.IPRoute2, testenv.NFTables, testenv.Ping)
	sfx := clustertest.Suffix(t)
	node := "npn-" + sfx
	clustertest.Netns(t, node)
	if err := namespace.Sysctl(node, "net.ipv4.ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	prod, dev := map[string]string{"env": "prod"}, map[string]string{"env": "dev"}
	web := rigPod("prod", "web", "10.222.0.10", prod, map[string]string{"app": "web"}, corev1.ContainerPort{Name: "http", ContainerPort: 8080})
	db := rigPod("prod", "db", "10.222.0.11", prod, map[string]string{"app": "db"}, corev1.ContainerPort{Name: "pg", ContainerPort: 81})
	tool := rigPod("dev", "tool", "10.222.0.12", dev, map[string]string{"app": "tool"})
	rigNode := &netpol.Node{Name: "node", Labels: map[string]string{"role": "worker"}, IPs: []netip.Addr{netip.MustParseAddr(gateway)}}
	ends := []*hostEnd{
		{name: "web", pod: web}, {name: "db", pod: db}, {name: "tool", pod: tool},
		{name: "ext", ips: []string{"10.223.0.5", "10.223.1.5"}},
		{name: "node", node: rigNode, ns: node, ips: []string{gateway}},
	}
	tcpPorts, udpPort := []int{80, 81, 8080}, 53
	// SCTP's probes are raw INIT / INIT ACK packets: the kernel has no SCTP (vpctest.ServeSCTP).
	for i, e := range ends {
		if e.node == nil {
			e.ns, e.hostIf = fmt.Sprintf("np%d-%s", i, sfx), fmt.Sprintf("npv%d%s", i, sfx)
			if e.pod != nil {
				e.ips = []string{e.pod.IPs[0].String()}
			}
			plug(t, node, e)
		}
		for _, ip := range e.ips {
			for _, p := range tcpPorts {
				vpctest.ServeTCP(t, e.ns, net.JoinHostPort(ip, strconv.Itoa(p)))
			}
			vpctest.ServeUDP(t, e.ns, net.JoinHostPort(ip, strconv.Itoa(udpPort)))
			vpctest.ServeSCTP(t, e.ns, net.JoinHostPort(ip, strconv.Itoa(sctpPort)))
		}
	}

	eval, err := netpol.Standard(rigClusterPolicies(), rigNetworkPolicies())
	if err != nil {
		t.Fatal(err)
	}
	u := &netpol.Universe{Pods: []*netpol.Pod{web, db, tool}, Nodes: []*netpol.Node{rigNode}}
	var local []netpol.LocalPod
	for _, e := range ends {
		if e.pod != nil {
			local = append(local, netpol.LocalPod{Pod: e.pod, Interface: e.hostIf})
		}
	}
	script, err := netpol.CompileNFT(eval, u, local)
	if err != nil {
		t.Fatal(err)
	}
	applyNFT(t, node, script)

	type cell struct {
		name             string
		evaluator, probe bool
	}
	var (
		mu    sync.Mutex
		cells []cell
		wg    sync.WaitGroup
	)
	for _, src := range ends {
		for _, dst := range ends {
			if src == dst {
				continue
			}
			for _, dstIP := range dst.ips {
				for _, c := range rigConnections(src, dst, dstIP, tcpPorts, udpPort) {
					want := eval.Evaluate(c).Allowed
					name := fmt.Sprintf("%s->%s(%s) %s/%d", src.name, dst.name, dstIP, c.Protocol, c.Port)
					wg.Go(func() {
						got, err := probe(src.ns, src.ips[0], dstIP, c.Protocol, int(c.Port))
						if err != nil {
							t.Errorf("%s: the probe could not decide: %v", name, err)
							return
						}
						mu.Lock()
						defer mu.Unlock()
						cells = append(cells, cell{name, want, got})
					})
				}
			}
		}
	}
	wg.Wait()
	verdicts := map[string]bool{}
	allowed := 0
	for _, c := range cells {
		verdicts[c.name] = c.probe
		if c.evaluator != c.probe {
			t.Errorf("%s: the evaluator says allowed=%v, the packets were allowed=%v", c.name, c.evaluator, c.probe)
		}
		if c.probe {
			allowed++
		}
	}
	checkRigCoverage(t, verdicts, allowed, len(cells))
	if t.Failed() {
		t.Logf("ruleset:\n%s", script)
	}
}

// checkRigCoverage makes sure that the matrix exercises what it is for: some flows allowed,
// some denied, and return traffic through a denied reverse direction.
func checkRigCoverage(t *testing.T, verdicts map[string]bool, allowed, total int) {
	t.Helper()
	if allowed == 0 || allowed == total {
		t.Errorf("%d of %d flows allowed: the matrix tests nothing", allowed, total)
	}
	// tool -> db on 8080 is accepted by the Admin tier while db -> tool is denied by the
	// Baseline tier: the TCP answer is return traffic against the denied direction.
	for name, want := range map[string]bool{
		"tool->db(10.222.0.11) TCP/8080":  true,
		"db->tool(10.222.0.12) TCP/8080":  false,
		"web->ext(10.223.0.5) TCP/80":     true,
		"web->ext(10.223.1.5) TCP/80":     false, // the ipBlock's except
		"web->ext(10.223.0.5) UDP/53":     true,  // Admin Accept beats web's egress isolation
		"web->db(10.222.0.11) UDP/53":     false, // but not db's ingress isolation
		"ext->web(10.222.0.10) TCP/81":    true,  // endPort
		"tool->web(10.222.0.10) TCP/8080": true,  // Admin Pass, NetworkPolicy's named port
		"tool->web(10.222.0.10) TCP/81":   false, // Admin Pass, NetworkPolicy denies
		"node->web(10.222.0.10) TCP/81":   true,  // web is isolated, but not from its own node
		"web->db(10.222.0.11) ICMP/0":     false, // db admits web on its named port only
		"ext->tool(10.222.0.12) ICMP/0":   true,  // nothing isolates tool from the outside
		"web->node(169.254.1.1) TCP/80":   true,  // nor towards it
		"web->node(169.254.1.1) TCP/8080": false, // the Admin tier's nodes peer
		// SCTP, by NetworkPolicy and by the Admin tier; the INIT ACK is return traffic into
		// web's isolated ingress and against the Baseline's db -> tool.
		"web->db(10.222.0.11) SCTP/7777":  true,
		"tool->db(10.222.0.11) SCTP/7777": true,
		"ext->db(10.222.0.11) SCTP/7777":  false,
		"db->tool(10.222.0.12) SCTP/7777": false,
		"web->ext(10.223.0.5) SCTP/7777":  false, // web's egress to the ipBlock is TCP/80 only
	} {
		if got, ok := verdicts[name]; !ok || got != want {
			t.Errorf("%s: packets allowed=%v (probed %v), the policies say %v", name, got, ok, want)
		}
	}
	t.Logf("%d flows probed, %d allowed", total, allowed)
}

func rigPod(ns, name, ip string, nsLabels, labels map[string]string, ports ...corev1.ContainerPort) *netpol.Pod {
	return &netpol.Pod{Namespace: ns, Name: name, NodeName: "node", Labels: labels, NamespaceLabels: nsLabels,
		Ports: ports, IPs: []netip.Addr{netip.MustParseAddr(ip)}}
}

func rigEndpoint(e *hostEnd, ip string) netpol.Endpoint {
	return netpol.Endpoint{Pod: e.pod, Node: e.node, IP: netip.MustParseAddr(ip)}
}

func rigConnections(src, dst *hostEnd, dstIP string, tcpPorts []int, udpPort int) []netpol.Connection {
	s, d := rigEndpoint(src, src.ips[0]), rigEndpoint(dst, dstIP)
	out := []netpol.Connection{udp(s, d, int32(udpPort)), icmp(s, d), sctp(s, d, sctpPort)}
	for _, p := range tcpPorts {
		out = append(out, tcp(s, d, int32(p)))
	}
	return out
}

// rigNetworkPolicies: db admits web on its named port and SCTP's sctpPort; web is isolated both ways, admits
// every pod on its named port and the outside's ipBlock (but its except) on 80-81, and may
// reach db and that ipBlock on 80.
func rigNetworkPolicies() []networkingv1.NetworkPolicy {
	block := blockPeer("10.223.0.0/16", "10.223.1.0/24")
	return []networkingv1.NetworkPolicy{
		np("prod", "db", sel("app", "db"), ingress(peers(podPeer(sel("app", "web"))), namedPort(corev1.ProtocolTCP, "pg"), port(corev1.ProtocolSCTP, sctpPort))),
		np("prod", "web", sel("app", "web"), types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
			ingress(peers(nsPeer(all)), namedPort(corev1.ProtocolTCP, "http")),
			ingress(peers(block), portRange(corev1.ProtocolTCP, 80, 81)),
			egress(peers(podPeer(sel("app", "db")))),
			egress(peers(block), port(corev1.ProtocolTCP, 80))),
	}
}

// rigClusterPolicies: prod may not reach the node's 8080; pods may send DNS to pods and to 10.223.0.0/24 (Admin Accept); dev may not reach prod on 80;
// dev's tool reaches db on 8080 and SCTP's sctpPort whatever db's policy says; web hands dev's traffic to its
// NetworkPolicy (Pass) and denies every other pod's that its policy would not decide; the
// Baseline isolates dev from prod and from the outside's 10.223.1.0/24.
func rigClusterPolicies() []cnpv1.ClusterNetworkPolicy {
	return cnps(
		cnp("dns", admin, 5, subjectNS(all), cEgress("dns", accept, toNetworks("10.222.0.0/16", "10.223.0.0/24"),
			cnpv1.ClusterNetworkPolicyProtocol{UDP: &cnpv1.ClusterNetworkPolicyProtocolUDP{DestinationPort: &cnpv1.Port{Number: 53}}})),
		cnp("no-node-8080", admin, 1, subjectNS(sel("env", "prod")), cEgress("kubelet", deny,
			[]cnpv1.ClusterNetworkPolicyEgressPeer{{Nodes: sel("role", "worker")}}, cTCP(8080))),
		cnp("dev-no-80", admin, 10, subjectNS(sel("env", "prod")), cIngress("deny-80", deny, fromNS(sel("env", "dev")), cTCP(80))),
		cnp("tool-to-db", admin, 20, subjectPods(sel("env", "prod"), sel("app", "db")),
			cIngress("tool", accept, []cnpv1.ClusterNetworkPolicyIngressPeer{{Pods: &cnpv1.NamespacedPod{NamespaceSelector: *sel("env", "dev"), PodSelector: *sel("app", "tool")}}}, cTCP(8080), cSCTP(sctpPort))),
		cnp("web", admin, 30, subjectPods(all, sel("app", "web")),
			cIngress("pass-dev", pass, fromNS(sel("env", "dev"))),
			cIngress("deny-other-pods-81", deny, fromNS(all), cTCP(81))),
		cnp("dev-isolation", base, 10, subjectNS(sel("env", "dev")),
			cIngress("from-prod", deny, fromNS(sel("env", "prod"))),
			cEgress("to-outside-1", deny, toNetworks("10.223.1.0/24"))),
	)
}

// sctpPort is the SCTP port every end serves.
const sctpPort = 7777

// gateway is the node side's address on every veth, the pods' gateway.
const gateway = "169.254.1.1"

// plug puts e in its namespace, linked to the node: the pod's addresses are /32s, its
// gateway the node side's link-local address (as Calico does), and the node routes each
// address to its veth. Nothing routes out of these namespaces.
func plug(t *testing.T, node string, e *hostEnd) {
	t.Helper()
	clustertest.Netns(t, e.ns)
	clustertest.Veth(t, clustertest.End{Netns: node, Name: e.hostIf, CIDR: "169.254.1.1/32"}, clustertest.End{Netns: e.ns, Name: "eth0"})
	for _, ip := range e.ips {
		clustertest.InNetns(t, e.ns, "ip", "addr", "add", ip+"/32", "dev", "eth0")
		clustertest.InNetns(t, node, "ip", "route", "add", ip+"/32", "dev", e.hostIf)
	}
	clustertest.InNetns(t, e.ns, "ip", "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link")
	clustertest.InNetns(t, e.ns, "ip", "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
	if dev := clustertest.RouteVia(t, e.ns, "10.222.0.1"); dev != "eth0" {
		t.Fatalf("%s routes through %s, not its veth", e.ns, dev)
	}
}

func applyNFT(t *testing.T, ns, script string) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s\nruleset:\n%s", err, out, script)
	}
}

// probe connects from src (inside ns) to dst and reports whether the answer came back
// (vpctest.Probe and vpctest.Ping say what counts as an answer, a drop and an error).
func probe(ns, src, dst string, proto corev1.Protocol, port int) (bool, error) {
	if proto == netpol.ProtocolICMP {
		return vpctest.Ping(ns, src, dst, probeTimeout)
	}
	return vpctest.Probe(ns, src, dst, strings.ToLower(string(proto)), port, probeTimeout)
}
