package netpol_test

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
)

// verdictCase is one connection under a set of policies, and what each direction's deciding
// step must be: "" when no layer decides (or the direction's end is not a pod), else
// "Verdict policy rule".
type verdictCase struct {
	name              string
	cnps              []cnpv1.ClusterNetworkPolicy
	nps               []networkingv1.NetworkPolicy
	conn              netpol.Connection
	allowed           bool
	egress, ingress   string
	wantIngressLayers int // when set, how many layers ingress went through
}

func runCases(t *testing.T, cases []verdictCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := netpol.Standard(tc.cnps, tc.nps)
			if err != nil {
				t.Fatal(err)
			}
			r := e.Evaluate(tc.conn)
			if r.Allowed != tc.allowed {
				t.Errorf("%s: allowed=%v, want %v\negress: %v\ningress: %v", tc.conn, r.Allowed, tc.allowed, r.Egress.Steps, r.Ingress.Steps)
			}
			if got := decider(r.Egress); got != tc.egress {
				t.Errorf("egress decided by %q, want %q (steps %v)", got, tc.egress, r.Egress.Steps)
			}
			if got := decider(r.Ingress); got != tc.ingress {
				t.Errorf("ingress decided by %q, want %q (steps %v)", got, tc.ingress, r.Ingress.Steps)
			}
			if tc.wantIngressLayers != 0 && len(r.Ingress.Steps) != tc.wantIngressLayers {
				t.Errorf("ingress went through %d layers, want %d: %v", len(r.Ingress.Steps), tc.wantIngressLayers, r.Ingress.Steps)
			}
		})
	}
}

func decider(j netpol.Judgement) string {
	s, ok := j.Decider()
	if !ok {
		return ""
	}
	return fmt.Sprintf("%s %s %s", s.Verdict, s.Policy, s.Rule)
}

const (
	tnpIn0  = "Accept default/test-network-policy spec.ingress[0]"
	tnpEg0  = "Accept default/test-network-policy spec.egress[0]"
	tnpDeny = "Deny default/test-network-policy (isolation)"
)

// TestNetworkPolicyDocumentationExample pins the Kubernetes documentation's
// test-network-policy: db pods admit TCP 6379 from 172.17.0.0/16 except 172.17.1.0/24, from
// namespace project=myproject and from role=frontend pods of their namespace; they may only
// reach 10.0.0.0/24 on TCP 5978.
func TestNetworkPolicyDocumentationExample(t *testing.T) {
	nps := []networkingv1.NetworkPolicy{testNetworkPolicy()}
	runCases(t, []verdictCase{
		{name: "frontend pod of the namespace", nps: nps, conn: tcp(at(frontend), at(db), 6379), allowed: true, ingress: tnpIn0},
		{name: "another port", nps: nps, conn: tcp(at(frontend), at(db), 6380), ingress: tnpDeny},
		{name: "UDP on the port", nps: nps, conn: udp(at(frontend), at(db), 6379), ingress: tnpDeny},
		{name: "any pod of a project=myproject namespace", nps: nps, conn: tcp(at(other), at(db), 6379), allowed: true, ingress: tnpIn0},
		{name: "a pod of the namespace without role=frontend", nps: nps, conn: tcp(at(client), at(db), 6379), ingress: tnpDeny},
		{name: "role=client pod of another namespace", nps: nps, conn: tcp(at(alice), at(db), 6379), ingress: tnpDeny},
		{name: "inside the ipBlock", nps: nps, conn: tcp(ext("172.17.0.5"), at(db), 6379), allowed: true, ingress: tnpIn0},
		{name: "inside the except", nps: nps, conn: tcp(ext("172.17.1.5"), at(db), 6379), ingress: tnpDeny},
		{name: "egress to the ipBlock's port", nps: nps, conn: tcp(at(db), ext("10.0.0.7"), 5978), allowed: true, egress: tnpEg0},
		{name: "egress outside the ipBlock", nps: nps, conn: tcp(at(db), ext("10.0.1.7"), 5978), egress: tnpDeny},
		{name: "egress to another port", nps: nps, conn: tcp(at(db), ext("10.0.0.7"), 5979), egress: tnpDeny},
		{name: "egress to a pod: isolated, even one that allows it", nps: nps, conn: tcp(at(db), at(frontend), 80), egress: tnpDeny},
		{name: "ipBlock matches pod addresses too", nps: []networkingv1.NetworkPolicy{np("default", "p", sel("role", "db"),
			ingress(peers(blockPeer("10.1.1.10/32")))),
		}, conn: tcp(at(other), at(db), 1), allowed: true, ingress: "Accept default/p spec.ingress[0]"},
		{name: "pods the policy does not select are not isolated", nps: nps, conn: tcp(at(client), at(frontend), 80), allowed: true},
		{name: "ICMP matches no rule with ports", nps: nps, conn: icmp(at(frontend), at(db)), ingress: tnpDeny},
	})
}

// TestNetworkPolicyIsolation pins the documentation's default policies and how isolation,
// policyTypes and several policies combine.
func TestNetworkPolicyIsolation(t *testing.T) {
	denyIngress := np("default", "default-deny-ingress", all, types(networkingv1.PolicyTypeIngress))
	denyEgress := np("default", "default-deny-egress", all, types(networkingv1.PolicyTypeEgress))
	allowAllIngress := np("default", "allow-all-ingress", all, types(networkingv1.PolicyTypeIngress), ingress(nil))
	allowAllEgress := np("default", "allow-all-egress", all, types(networkingv1.PolicyTypeEgress), egress(nil))
	onlyEgressRules := np("default", "egress-only", sel("role", "frontend"), egress(peers(podPeer(sel("role", "db")))))
	fromFrontend := np("default", "from-frontend", sel("role", "db"), ingress(peers(podPeer(sel("role", "frontend")))))
	fromClient := np("default", "from-client", sel("role", "db"), ingress(peers(podPeer(sel("role", "client")))))
	hostOnA := pod("kube-system", "agent", "192.168.0.1", nil)
	hostOnA.HostNetwork = true
	runCases(t, []verdictCase{
		{name: "default deny ingress", nps: []networkingv1.NetworkPolicy{denyIngress}, conn: tcp(at(frontend), at(db), 80),
			ingress: "Deny default/default-deny-ingress (isolation)"},
		{name: "default deny ingress leaves egress", nps: []networkingv1.NetworkPolicy{denyIngress}, conn: tcp(at(db), at(other), 80), allowed: true},
		{name: "default deny ingress from outside", nps: []networkingv1.NetworkPolicy{denyIngress}, conn: tcp(ext("8.8.8.8"), at(db), 80),
			ingress: "Deny default/default-deny-ingress (isolation)"},
		{name: "allow all ingress beside default deny", nps: []networkingv1.NetworkPolicy{denyIngress, allowAllIngress}, conn: udp(ext("8.8.8.8"), at(db), 53),
			allowed: true, ingress: "Accept default/allow-all-ingress spec.ingress[0]"},
		{name: "default deny egress", nps: []networkingv1.NetworkPolicy{denyEgress}, conn: udp(at(db), ext("8.8.8.8"), 53),
			egress: "Deny default/default-deny-egress (isolation)"},
		{name: "allow all egress", nps: []networkingv1.NetworkPolicy{denyEgress, allowAllEgress}, conn: icmp(at(db), ext("8.8.8.8")),
			allowed: true, egress: "Accept default/allow-all-egress spec.egress[0]"},
		{name: "default deny both directions", nps: []networkingv1.NetworkPolicy{denyIngress, denyEgress}, conn: tcp(at(frontend), at(db), 80),
			egress: "Deny default/default-deny-egress (isolation)", ingress: "Deny default/default-deny-ingress (isolation)"},
		{name: "policyTypes omitted, egress rules: egress isolated", nps: []networkingv1.NetworkPolicy{onlyEgressRules}, conn: tcp(at(frontend), at(client), 80),
			egress: "Deny default/egress-only (isolation)"},
		{name: "policyTypes omitted, egress rules: ingress isolated too", nps: []networkingv1.NetworkPolicy{onlyEgressRules}, conn: tcp(at(client), at(frontend), 80),
			ingress: "Deny default/egress-only (isolation)"},
		{name: "policyTypes omitted, no egress rules: egress free", nps: []networkingv1.NetworkPolicy{fromFrontend}, conn: tcp(at(db), at(client), 80), allowed: true},
		{name: "policies add up: first", nps: []networkingv1.NetworkPolicy{fromFrontend, fromClient}, conn: tcp(at(frontend), at(db), 80),
			allowed: true, ingress: "Accept default/from-frontend spec.ingress[0]"},
		{name: "policies add up: second", nps: []networkingv1.NetworkPolicy{fromFrontend, fromClient}, conn: tcp(at(client), at(db), 80),
			allowed: true, ingress: "Accept default/from-client spec.ingress[0]"},
		{name: "a policy of another namespace does not select", nps: []networkingv1.NetworkPolicy{np("myproject", "deny", all, types(networkingv1.PolicyTypeIngress))},
			conn: tcp(at(frontend), at(db), 80), allowed: true},
		{name: "a pod cannot block access to itself", nps: []networkingv1.NetworkPolicy{denyIngress, denyEgress}, conn: tcp(at(db), at(db), 80), allowed: true},
		{name: "its own node reaches the pod (probes)", nps: []networkingv1.NetworkPolicy{denyIngress}, conn: tcp(node(nodeA, "192.168.0.1"), at(db), 8080), allowed: true},
		{name: "a host-network pod on its node is its node", nps: []networkingv1.NetworkPolicy{denyIngress}, conn: tcp(at(hostOnA), at(db), 8080), allowed: true},
		{name: "a host-network pod on its node, its Node not given", nps: []networkingv1.NetworkPolicy{denyIngress},
			conn: tcp(netpol.Endpoint{Pod: hostOnA, IP: hostOnA.IPs[0]}, at(db), 8080), allowed: true},
		{name: "another node does not", nps: []networkingv1.NetworkPolicy{denyIngress}, conn: tcp(node(nodeB, "192.168.0.2"), at(db), 8080),
			ingress: "Deny default/default-deny-ingress (isolation)"},
		{name: "host-network pods are not selected", nps: []networkingv1.NetworkPolicy{np("kube-system", "deny", all, types(networkingv1.PolicyTypeIngress))},
			conn: tcp(at(frontend), at(hostPod), 80), allowed: true},
	})
}

// TestNetworkPolicyPeers pins the documentation's "behavior of to and from selectors": one
// element with namespaceSelector and podSelector is AND, two elements are OR.
func TestNetworkPolicyPeers(t *testing.T) {
	and := np("alice", "and", all, ingress(peers(nsPodPeer(sel("user", "alice"), sel("role", "client")))))
	or := np("alice", "or", all, ingress(peers(nsPeer(sel("user", "alice")), podPeer(sel("role", "client")))))
	byName := np("default", "by-name", all, ingress(peers(nsPeer(sel(netpol.NamespaceNameLabel, "monitoring")))))
	allPods := np("default", "all-pods", all, ingress(peers(nsPeer(all))))
	runCases(t, []verdictCase{
		{name: "AND: client in alice's namespace", nps: []networkingv1.NetworkPolicy{and}, conn: tcp(at(alice), at(aliceSrv), 80),
			allowed: true, ingress: "Accept alice/and spec.ingress[0]"},
		{name: "AND: client elsewhere", nps: []networkingv1.NetworkPolicy{and}, conn: tcp(at(client), at(aliceSrv), 80), ingress: "Deny alice/and (isolation)"},
		{name: "AND: non-client in alice's namespace", nps: []networkingv1.NetworkPolicy{and}, conn: tcp(at(aliceSrv), at(alice), 80), ingress: "Deny alice/and (isolation)"},
		{name: "OR: non-client in alice's namespace", nps: []networkingv1.NetworkPolicy{or}, conn: tcp(at(aliceSrv), at(alice), 80),
			allowed: true, ingress: "Accept alice/or spec.ingress[0]"},
		{name: "OR: podSelector alone is the policy's namespace", nps: []networkingv1.NetworkPolicy{or}, conn: tcp(at(client), at(aliceSrv), 80),
			ingress: "Deny alice/or (isolation)"},
		{name: "namespace by its name label", nps: []networkingv1.NetworkPolicy{byName}, conn: tcp(at(monitor), at(db), 9100),
			allowed: true, ingress: "Accept default/by-name spec.ingress[0]"},
		{name: "namespace by its name label, another one", nps: []networkingv1.NetworkPolicy{byName}, conn: tcp(at(other), at(db), 9100),
			ingress: "Deny default/by-name (isolation)"},
		{name: "empty namespaceSelector: every pod", nps: []networkingv1.NetworkPolicy{allPods}, conn: tcp(at(other), at(db), 1),
			allowed: true, ingress: "Accept default/all-pods spec.ingress[0]"},
		{name: "empty namespaceSelector: no address outside", nps: []networkingv1.NetworkPolicy{allPods}, conn: tcp(ext("8.8.8.8"), at(db), 1),
			ingress: "Deny default/all-pods (isolation)"},
		{name: "pod selectors do not match host-network pods", nps: []networkingv1.NetworkPolicy{allPods}, conn: tcp(at(hostPod), at(db), 1),
			ingress: "Deny default/all-pods (isolation)"},
	})
}

// TestNetworkPolicyPorts pins ports by number, by name and ranges (endPort), per protocol.
func TestNetworkPolicyPorts(t *testing.T) {
	rangeEgress := np("default", "range", sel("role", "db"), types(networkingv1.PolicyTypeEgress),
		egress(peers(blockPeer("10.0.0.0/24")), portRange(corev1.ProtocolTCP, 32000, 32768)))
	named := np("default", "named", sel("role", "db"), ingress(nil, namedPort(corev1.ProtocolTCP, "redis"), namedPort(corev1.ProtocolUDP, "metrics")))
	namedEgress := np("default", "named-egress", sel("role", "frontend"), types(networkingv1.PolicyTypeEgress), egress(nil, namedPort(corev1.ProtocolTCP, "redis")))
	sctpPort := np("default", "sctp", sel("role", "db"), ingress(nil, port(corev1.ProtocolSCTP, 7777)))
	allUDP := np("default", "all-udp", sel("role", "db"), ingress(nil, networkingv1.NetworkPolicyPort{Protocol: ptr(corev1.ProtocolUDP)}))
	noProto := np("default", "tcp-default", sel("role", "db"), ingress(nil, networkingv1.NetworkPolicyPort{Port: port(corev1.ProtocolTCP, 80).Port}))
	in := func(name string) string { return "Accept default/" + name + " spec.ingress[0]" }
	runCases(t, []verdictCase{
		{name: "endPort: first", nps: []networkingv1.NetworkPolicy{rangeEgress}, conn: tcp(at(db), ext("10.0.0.1"), 32000), allowed: true, egress: "Accept default/range spec.egress[0]"},
		{name: "endPort: last", nps: []networkingv1.NetworkPolicy{rangeEgress}, conn: tcp(at(db), ext("10.0.0.1"), 32768), allowed: true, egress: "Accept default/range spec.egress[0]"},
		{name: "endPort: above", nps: []networkingv1.NetworkPolicy{rangeEgress}, conn: tcp(at(db), ext("10.0.0.1"), 32769), egress: "Deny default/range (isolation)"},
		{name: "endPort: below", nps: []networkingv1.NetworkPolicy{rangeEgress}, conn: tcp(at(db), ext("10.0.0.1"), 31999), egress: "Deny default/range (isolation)"},
		{name: "named port: the pod's number", nps: []networkingv1.NetworkPolicy{named}, conn: tcp(at(frontend), at(db), 6379), allowed: true, ingress: in("named")},
		{name: "named port: another number", nps: []networkingv1.NetworkPolicy{named}, conn: tcp(at(frontend), at(db), 6380), ingress: "Deny default/named (isolation)"},
		{name: "named port: UDP port by name", nps: []networkingv1.NetworkPolicy{named}, conn: udp(at(frontend), at(db), 9100), allowed: true, ingress: in("named")},
		{name: "named port: the name's protocol only", nps: []networkingv1.NetworkPolicy{named}, conn: udp(at(frontend), at(db), 6379), ingress: "Deny default/named (isolation)"},
		{name: "named egress port: the destination pod's", nps: []networkingv1.NetworkPolicy{namedEgress}, conn: tcp(at(frontend), at(db), 6379),
			allowed: true, egress: "Accept default/named-egress spec.egress[0]"},
		{name: "named egress port: a pod without it", nps: []networkingv1.NetworkPolicy{namedEgress}, conn: tcp(at(frontend), at(client), 6379),
			egress: "Deny default/named-egress (isolation)"},
		{name: "named egress port: an address outside", nps: []networkingv1.NetworkPolicy{namedEgress}, conn: tcp(at(frontend), ext("8.8.8.8"), 6379),
			egress: "Deny default/named-egress (isolation)"},
		{name: "SCTP", nps: []networkingv1.NetworkPolicy{sctpPort}, conn: sctp(at(frontend), at(db), 7777), allowed: true, ingress: in("sctp")},
		{name: "SCTP's port over TCP", nps: []networkingv1.NetworkPolicy{sctpPort}, conn: tcp(at(frontend), at(db), 7777), ingress: "Deny default/sctp (isolation)"},
		{name: "protocol without port: every port", nps: []networkingv1.NetworkPolicy{allUDP}, conn: udp(at(frontend), at(db), 40000), allowed: true, ingress: in("all-udp")},
		{name: "protocol without port: that protocol only", nps: []networkingv1.NetworkPolicy{allUDP}, conn: tcp(at(frontend), at(db), 40000), ingress: "Deny default/all-udp (isolation)"},
		{name: "port without protocol: TCP", nps: []networkingv1.NetworkPolicy{noProto}, conn: tcp(at(frontend), at(db), 80), allowed: true, ingress: in("tcp-default")},
		{name: "port without protocol: not UDP", nps: []networkingv1.NetworkPolicy{noProto}, conn: udp(at(frontend), at(db), 80), ingress: "Deny default/tcp-default (isolation)"},
	})
}

func ptr[T any](v T) *T { return &v }
