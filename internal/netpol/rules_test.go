package netpol_test

import (
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
)

// TestRulesAgreeWithJudge is the unit-tier differential test of what the compiler stands on:
// every layer's Rules, walked the way the nftables chains walk them (first match decides, Pass
// goes to the next layer), must give Evaluate's verdict for every connection of a matrix of
// every endpoint, protocol and port of the fixtures, under policies using every feature at
// once. The privileged test checks the same against real packets on a smaller matrix.
func TestRulesAgreeWithJudge(t *testing.T) {
	nodeA.IPs, nodeB.IPs = []netip.Addr{netip.MustParseAddr("192.168.0.1")}, []netip.Addr{netip.MustParseAddr("192.168.0.2")}
	t.Cleanup(func() { nodeA.IPs, nodeB.IPs = nil, nil })
	pods := []*netpol.Pod{db, frontend, client, other, alice, aliceSrv, monitor, hostPod}
	u := &netpol.Universe{Pods: pods, Nodes: []*netpol.Node{nodeA, nodeB}}
	endpoints := []netpol.Endpoint{node(nodeA, "192.168.0.1"), node(nodeB, "192.168.0.2"),
		ext("172.17.0.5"), ext("172.17.1.5"), ext("10.0.0.7"), ext("10.0.1.7"), ext("8.8.8.8")}
	for _, p := range pods {
		endpoints = append(endpoints, at(p))
	}
	for name, set := range matrixPolicySets() {
		e, err := netpol.Standard(set.cnps, set.nps)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		checkRulesAgree(t, name, e, u, endpoints)
	}
}

// checkRulesAgree walks e's Rules for every connection between endpoints (of every protocol and
// port matrixFlows gives) and fails where the walk and Evaluate disagree; a policy set that
// allows all or nothing tests nothing, so that fails too.
func checkRulesAgree(t *testing.T, name string, e *netpol.Evaluator, u *netpol.Universe, endpoints []netpol.Endpoint) {
	t.Helper()
	checked, allowed := 0, 0
	for _, src := range endpoints {
		for _, dst := range endpoints {
			if src.IP == dst.IP {
				continue // a pod's traffic to itself never reaches its interface
			}
			for _, c := range matrixFlows(src, dst) {
				want := e.Evaluate(c).Allowed
				if got := walk(e, netpol.Egress, c, u) && walk(e, netpol.Ingress, c, u); got != want {
					t.Errorf("%s: %s: the rules say allowed=%v, Evaluate %v", name, c, got, want)
				}
				checked++
				if want {
					allowed++
				}
			}
		}
	}
	if allowed == 0 || allowed == checked {
		t.Errorf("%s: %d of %d connections allowed: the set tests nothing", name, allowed, checked)
	}
	t.Logf("%s: %d connections checked, %d allowed", name, checked, allowed)
}

func matrixFlows(src, dst netpol.Endpoint) []netpol.Connection {
	out := []netpol.Connection{icmp(src, dst), sctp(src, dst, 7777), sctp(src, dst, 7778)}
	for _, p := range []int32{53, 80, 81, 5978, 6379, 6380, 8080, 9100, 10250, 31999, 32000, 32768, 32769} {
		out = append(out, tcp(src, dst, p), udp(src, dst, p))
	}
	return out
}

// walk is what the compiled chains do for one direction.
func walk(e *netpol.Evaluator, d netpol.Direction, c netpol.Connection, u *netpol.Universe) bool {
	subject, peer := c.Dst, c.Src
	if d == netpol.Egress {
		subject, peer = c.Src, c.Dst
	}
	if subject.Pod == nil || subject.Pod.HostNetwork {
		return true
	}
layers:
	for _, l := range e.Layers() {
		for _, r := range l.Rules(d, subject.Pod, u) {
			if !slices.ContainsFunc(r.Matches, func(m netpol.Match) bool { return covers(m, peer.IP, c) }) {
				continue
			}
			switch r.Verdict {
			case netpol.Accept:
				return true
			case netpol.Deny:
				return false
			default:
				continue layers
			}
		}
	}
	return true
}

func covers(m netpol.Match, ip netip.Addr, c netpol.Connection) bool {
	if !m.Net.Contains(ip) || slices.ContainsFunc(m.Except, func(p netip.Prefix) bool { return p.Contains(ip) }) {
		return false
	}
	if len(m.Ports) == 0 {
		return true
	}
	return slices.ContainsFunc(m.Ports, func(p netpol.PortRange) bool {
		return p.Protocol == c.Protocol && (p.From == 0 && p.To == 0 || p.From <= c.Port && c.Port <= p.To)
	})
}

type policySet struct {
	cnps []cnpv1.ClusterNetworkPolicy
	nps  []networkingv1.NetworkPolicy
}

// matrixPolicySets are the table tests' policies, together.
func matrixPolicySets() map[string]policySet {
	nps := []networkingv1.NetworkPolicy{
		testNetworkPolicy(),
		np("alice", "and", all, ingress(peers(nsPodPeer(sel("user", "alice"), sel("role", "client"))))),
		np("default", "by-name", sel("role", "client"), ingress(peers(nsPeer(sel(netpol.NamespaceNameLabel, "monitoring"))))),
		np("default", "named", sel("role", "db"), ingress(nil, namedPort(corev1.ProtocolTCP, "redis"), namedPort(corev1.ProtocolUDP, "metrics"))),
		np("default", "named-egress", sel("role", "frontend"), types(networkingv1.PolicyTypeEgress),
			egress(peers(blockPeer("10.1.0.0/16")), namedPort(corev1.ProtocolTCP, "redis")),
			egress(peers(blockPeer("10.0.0.0/16", "10.0.1.0/24")), portRange(corev1.ProtocolTCP, 32000, 32768))),
		np("default", "sctp", sel("role", "db"), ingress(nil, port(corev1.ProtocolSCTP, 7777))),
		np("myproject", "deny-out", all, types(networkingv1.PolicyTypeEgress), egress(peers(nsPeer(sel("purpose", "monitoring"))))),
	}
	defaultNS := sel(netpol.NamespaceNameLabel, "default")
	cnpAll := cnps(
		cnp("deny-from-default", admin, 10, subjectNS(sel("user", "alice")), cIngress("deny-default", deny, fromNS(defaultNS))),
		cnp("allow-monitoring", admin, 10, subjectNS(all), cIngress("monitoring", accept, fromNS(sel("purpose", "monitoring")), cUDPRange(9000, 9200))),
		cnp("pass-default", admin, 5, subjectNS(defaultNS), cIngress("pass", pass, fromNS(defaultNS), cTCP(6379))),
		cnp("ordered", admin, 20, subjectNS(all), cIngress("tcp-80", accept, fromNS(all), cTCP(80)), cIngress("rest-81", deny, fromNS(all), cTCP(81))),
		cnp("egress-accept", admin, 15, subjectNS(sel("project", "myproject")), cEgress("out", accept, toNetworks("8.8.8.0/24"))),
		cnp("nodes", admin, 1, subjectNS(all), cEgress("deny-zone-b", deny, []cnpv1.ClusterNetworkPolicyEgressPeer{{Nodes: sel("zone", "b")}}, cTCP(10250))),
		cnp("named", admin, 2, subjectNS(all), cIngress("metrics", deny, fromNS(sel("user", "alice")), cnpv1.ClusterNetworkPolicyProtocol{DestinationNamedPort: "metrics"})),
		cnp("fail-accept", admin, 3, subjectNS(all), cEgress("unknown", accept, []cnpv1.ClusterNetworkPolicyEgressPeer{{}})),
		cnp("fail-deny", admin, 4, subjectPods(all, sel("app", "prom")), cEgress("unknown", deny, []cnpv1.ClusterNetworkPolicyEgressPeer{{}})),
		cnp("baseline-deny", base, 10, subjectNS(all), cIngress("deny-all", deny, fromNS(all))),
		cnp("baseline-egress", base, 5, subjectNS(all), cEgress("no-10", deny, toNetworks("10.0.0.0/8"), cUDPRange(50, 60))),
	)
	return map[string]policySet{
		"NetworkPolicy":        {nps: nps},
		"ClusterNetworkPolicy": {cnps: cnpAll},
		"both":                 {cnps: cnpAll, nps: nps},
	}
}
