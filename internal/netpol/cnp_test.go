package netpol_test

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
)

// TestClusterNetworkPolicyTiers pins the tiers as the network-policy-api describes them:
// Admin decides first (Accept and Deny are final, Pass hands over), NetworkPolicy decides for
// the pods it selects, Baseline for the rest, and then everything is allowed.
func TestClusterNetworkPolicyTiers(t *testing.T) {
	defaultNS := sel(netpol.NamespaceNameLabel, "default")
	allowFrontend := np("default", "allow-frontend", sel("role", "db"), ingress(peers(podPeer(sel("role", "frontend")))))
	denyAll := np("default", "deny-all", all, types(networkingv1.PolicyTypeIngress))
	adminDeny := cnp("deny-from-default", admin, 10, subjectNS(defaultNS), cIngress("deny-default", deny, fromNS(defaultNS)))
	adminAcceptMonitoring := cnp("allow-monitoring", admin, 10, subjectNS(all), cIngress("monitoring", accept, fromNS(sel("purpose", "monitoring"))))
	adminPass := cnp("pass-default", admin, 5, subjectNS(defaultNS), cIngress("pass", pass, fromNS(defaultNS)))
	baselineDeny := cnp("baseline-deny", base, 10, subjectNS(all), cIngress("deny-all", deny, fromNS(all)))
	runCases(t, []verdictCase{
		{name: "Admin Deny beats a NetworkPolicy that allows", cnps: cnps(adminDeny), nps: []networkingv1.NetworkPolicy{allowFrontend},
			conn: tcp(at(frontend), at(db), 80), ingress: "Deny deny-from-default deny-default", wantIngressLayers: 1},
		{name: "Admin Accept beats a NetworkPolicy that denies", cnps: cnps(adminAcceptMonitoring), nps: []networkingv1.NetworkPolicy{denyAll},
			conn: tcp(at(monitor), at(db), 9100), allowed: true, ingress: "Accept allow-monitoring monitoring", wantIngressLayers: 1},
		{name: "Admin Pass: NetworkPolicy decides", cnps: cnps(adminPass, adminDeny), nps: []networkingv1.NetworkPolicy{allowFrontend},
			conn: tcp(at(frontend), at(db), 80), allowed: true, ingress: "Accept default/allow-frontend spec.ingress[0]", wantIngressLayers: 2},
		{name: "Admin Pass skips the tier's later rules, NetworkPolicy denies", cnps: cnps(adminPass, adminDeny), nps: []networkingv1.NetworkPolicy{allowFrontend},
			conn: tcp(at(client), at(db), 80), ingress: "Deny default/allow-frontend (isolation)", wantIngressLayers: 2},
		{name: "Admin Pass, no NetworkPolicy: Baseline decides", cnps: cnps(adminPass, baselineDeny),
			conn: tcp(at(client), at(db), 80), ingress: "Deny baseline-deny deny-all", wantIngressLayers: 3},
		{name: "NetworkPolicy beats Baseline", cnps: cnps(baselineDeny), nps: []networkingv1.NetworkPolicy{allowFrontend},
			conn: tcp(at(frontend), at(db), 80), allowed: true, ingress: "Accept default/allow-frontend spec.ingress[0]", wantIngressLayers: 2},
		{name: "Baseline decides for pods no NetworkPolicy selects", cnps: cnps(baselineDeny), nps: []networkingv1.NetworkPolicy{allowFrontend},
			conn: tcp(at(db), at(frontend), 80), ingress: "Deny baseline-deny deny-all", wantIngressLayers: 3},
		{name: "no tier decides: allowed", cnps: cnps(adminDeny), conn: tcp(at(other), at(alice), 80), allowed: true},
		{name: "a subject's rule for another direction does not apply", cnps: cnps(adminDeny), conn: tcp(at(db), at(frontend), 80),
			ingress: "Deny deny-from-default deny-default"},
	})
}

func cnps(p ...cnpv1.ClusterNetworkPolicy) []cnpv1.ClusterNetworkPolicy { return p }

// TestClusterNetworkPolicyOrder pins priorities (lower first), the order of rules within a
// policy, the tie at equal priority (podsg: by name) and each direction on its own.
func TestClusterNetworkPolicyOrder(t *testing.T) {
	accept10 := cnp("b-accept", admin, 10, subjectNS(all), cIngress("accept", accept, fromNS(all)))
	deny20 := cnp("a-deny", admin, 20, subjectNS(all), cIngress("deny", deny, fromNS(all)))
	deny10 := cnp("a-deny", admin, 10, subjectNS(all), cIngress("deny", deny, fromNS(all)))
	ordered := cnp("ordered", admin, 10, subjectNS(all),
		cIngress("tcp-80", accept, fromNS(all), cTCP(80)),
		cIngress("rest", deny, fromNS(all)))
	egressAccept := cnp("egress-accept", admin, 10, subjectNS(all), cEgress("out", accept, toNetworks("0.0.0.0/0")))
	denyIn := np("default", "deny-in", all, types(networkingv1.PolicyTypeIngress))
	runCases(t, []verdictCase{
		{name: "lower priority value first: Accept", cnps: cnps(deny20, accept10), conn: tcp(at(other), at(db), 80), allowed: true, ingress: "Accept b-accept accept"},
		{name: "lower priority value first: Deny", cnps: cnps(accept10, cnp("z-deny", admin, 5, subjectNS(all), cIngress("deny", deny, fromNS(all)))), conn: tcp(at(other), at(db), 80), ingress: "Deny z-deny deny"},
		{name: "equal priority: by name", cnps: cnps(accept10, deny10), conn: tcp(at(other), at(db), 80), ingress: "Deny a-deny deny"},
		{name: "rules in order: first matches", cnps: cnps(ordered), conn: tcp(at(other), at(db), 80), allowed: true, ingress: "Accept ordered tcp-80"},
		{name: "rules in order: second", cnps: cnps(ordered), conn: tcp(at(other), at(db), 81), ingress: "Deny ordered rest"},
		{name: "egress Accept leaves the destination's ingress", cnps: cnps(egressAccept), nps: []networkingv1.NetworkPolicy{denyIn},
			conn: tcp(at(other), at(db), 80), egress: "Accept egress-accept out", ingress: "Deny default/deny-in (isolation)"},
		{name: "egress Accept beats the source's NetworkPolicy egress", cnps: cnps(egressAccept),
			nps:  []networkingv1.NetworkPolicy{np("myproject", "deny-out", all, types(networkingv1.PolicyTypeEgress))},
			conn: tcp(at(other), at(db), 80), allowed: true, egress: "Accept egress-accept out"},
	})
}

// TestClusterNetworkPolicyPeers pins peers and protocols: namespaces, pods, networks (which
// match pods' addresses too), nodes, named ports, ranges, no protocols (everything), and
// failing closed on a peer with no field set.
func TestClusterNetworkPolicyPeers(t *testing.T) {
	networks := cnp("networks", admin, 1, subjectNS(all), cEgress("deny-10", deny, toNetworks("10.1.0.0/24")))
	nodes := cnp("nodes", admin, 1, subjectNS(all), cEgress("deny-zone-b", deny, []cnpv1.ClusterNetworkPolicyEgressPeer{{Nodes: sel("zone", "b")}}))
	podsPeer := cnp("pods", admin, 1, subjectPods(all, sel("role", "db")),
		cIngress("clients-of-alice", deny, []cnpv1.ClusterNetworkPolicyIngressPeer{{Pods: &cnpv1.NamespacedPod{NamespaceSelector: *sel("user", "alice"), PodSelector: *sel("role", "client")}}}))
	named := cnp("named", admin, 1, subjectNS(all), cIngress("redis", deny, fromNS(all), cnpv1.ClusterNetworkPolicyProtocol{DestinationNamedPort: "redis"}))
	udpRange := cnp("udp-range", admin, 1, subjectNS(all), cEgress("dns", deny, toNetworks("0.0.0.0/0"), cUDPRange(50, 60)))
	failDeny := cnp("fail-deny", admin, 1, subjectNS(all), cEgress("unknown", deny, []cnpv1.ClusterNetworkPolicyEgressPeer{{}}))
	failAccept := cnp("fail-accept", admin, 1, subjectNS(all), cEgress("unknown", accept, []cnpv1.ClusterNetworkPolicyEgressPeer{{}}))
	denyOut := np("myproject", "deny-out", all, types(networkingv1.PolicyTypeEgress))
	runCases(t, []verdictCase{
		{name: "networks match pod addresses", cnps: cnps(networks), conn: icmp(at(other), at(db)), egress: "Deny networks deny-10"},
		{name: "networks: outside", cnps: cnps(networks), conn: tcp(at(other), at(alice), 80), allowed: true},
		{name: "nodes by label", cnps: cnps(nodes), conn: tcp(at(db), node(nodeB, "192.168.0.2"), 10250), egress: "Deny nodes deny-zone-b"},
		{name: "nodes: another label", cnps: cnps(nodes), conn: tcp(at(db), node(nodeA, "192.168.0.1"), 10250), allowed: true},
		{name: "nodes: an address that is no node's", cnps: cnps(nodes), conn: tcp(at(db), ext("192.168.0.2"), 10250), allowed: true},
		{name: "pods peer: namespace AND pod labels", cnps: cnps(podsPeer), conn: tcp(at(alice), at(db), 80), ingress: "Deny pods clients-of-alice"},
		{name: "pods peer: pod labels elsewhere", cnps: cnps(podsPeer), conn: tcp(at(client), at(db), 80), allowed: true},
		{name: "pods subject: another pod", cnps: cnps(podsPeer), conn: tcp(at(alice), at(frontend), 80), allowed: true},
		{name: "named port", cnps: cnps(named), conn: tcp(at(frontend), at(db), 6379), ingress: "Deny named redis"},
		{name: "named port: a pod without it", cnps: cnps(named), conn: tcp(at(frontend), at(client), 6379), allowed: true},
		{name: "range: inside", cnps: cnps(udpRange), conn: udp(at(db), ext("8.8.8.8"), 53), egress: "Deny udp-range dns"},
		{name: "range: end", cnps: cnps(udpRange), conn: udp(at(db), ext("8.8.8.8"), 60), egress: "Deny udp-range dns"},
		{name: "range: TCP", cnps: cnps(udpRange), conn: tcp(at(db), ext("8.8.8.8"), 53), allowed: true},
		{name: "fail closed: Deny with an unknown peer denies all", cnps: cnps(failDeny), conn: tcp(at(db), ext("8.8.8.8"), 443), egress: "Deny fail-deny unknown"},
		{name: "fail closed: Accept with an unknown peer matches nothing", cnps: cnps(failAccept), nps: []networkingv1.NetworkPolicy{denyOut},
			conn: tcp(at(other), ext("8.8.8.8"), 443), egress: "Deny myproject/deny-out (isolation)"},
		{name: "host-network pods are no subject", cnps: cnps(failDeny), conn: tcp(at(hostPod), ext("8.8.8.8"), 443), allowed: true},
	})
}
