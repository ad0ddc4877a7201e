package netpol_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
)

// TestBadPoliciesAreErrors checks that a policy the evaluator cannot apply faithfully is an
// error naming the policy and the field, not a policy silently read another way.
func TestBadPoliciesAreErrors(t *testing.T) {
	badSelector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}
	named := intstr.FromString("http")
	cases := []struct {
		name string
		cnps []cnpv1.ClusterNetworkPolicy
		nps  []networkingv1.NetworkPolicy
		want string
	}{
		{name: "podSelector", nps: []networkingv1.NetworkPolicy{np("ns", "p", badSelector)},
			want: `NetworkPolicy ns/p: spec.podSelector: "Near" is not a valid label selector operator`},
		{name: "peer selector", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, ingress(peers(nsPeer(badSelector))))},
			want: "NetworkPolicy ns/p: spec.ingress[0].from[0].namespaceSelector"},
		{name: "CIDR", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, egress(peers(blockPeer("10.0.0.0/33"))))},
			want: `NetworkPolicy ns/p: spec.egress[0].to[0].ipBlock.cidr: "10.0.0.0/33" is not a CIDR`},
		{name: "except outside the CIDR", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, egress(peers(blockPeer("10.0.0.0/24", "10.0.1.0/28"))))},
			want: "spec.egress[0].to[0].ipBlock.except[0]: 10.0.1.0/28 is not within 10.0.0.0/24"},
		{name: "empty peer", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, ingress(peers(networkingv1.NetworkPolicyPeer{})))},
			want: "spec.ingress[0].from[0]: a peer needs podSelector, namespaceSelector or ipBlock"},
		{name: "endPort with a named port", nps: []networkingv1.NetworkPolicy{np("ns", "p", all,
			ingress(nil, networkingv1.NetworkPolicyPort{Port: &named, EndPort: ptr[int32](90)}))},
			want: "spec.ingress[0].ports[0]: endPort 90 needs a numeric port"},
		{name: "endPort below port", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, ingress(nil, portRange(corev1.ProtocolTCP, 90, 80)))},
			want: "endPort 80 is not within port 90..65535"},
		{name: "policyTypes", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, types("Both"))},
			want: `NetworkPolicy ns/p: spec.policyTypes[0]: "Both" is not Ingress or Egress`},
		{name: "port 0", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, ingress(nil, port(corev1.ProtocolTCP, 0)))},
			want: "spec.ingress[0].ports[0]: port 0 is not within 1..65535"},
		{name: "CNP reversed range", cnps: cnps(cnp("c", admin, 1, subjectNS(all), cEgress("r", deny, toNetworks("10.0.0.0/8"), cUDPRange(60, 50)))),
			want: "ClusterNetworkPolicy c: spec.egress[0].protocols[0]: range 60-50 is not an increasing range within 1..65535"},
		{name: "CNP port 70000", cnps: cnps(cnp("c", admin, 1, subjectNS(all), cIngress("r", deny, fromNS(all), cTCP(70000)))),
			want: "spec.ingress[0].protocols[0]: port 70000 is not within 1..65535"},
		{name: "protocol", nps: []networkingv1.NetworkPolicy{np("ns", "p", all, ingress(nil, port("ICMP", 1)))},
			want: `spec.ingress[0].ports[0]: protocol "ICMP" is not TCP, UDP or SCTP`},
		{name: "CNP subject with both", cnps: cnps(cnp("c", admin, 1, cnpv1.ClusterNetworkPolicySubject{Namespaces: all, Pods: &cnpv1.NamespacedPod{}})),
			want: "ClusterNetworkPolicy c: spec.subject: exactly one of namespaces and pods must be set"},
		{name: "CNP priority", cnps: cnps(cnp("c", base, 1001, subjectNS(all))), want: "ClusterNetworkPolicy c: spec.priority 1001 is not within 0..1000"},
		{name: "CNP action", cnps: cnps(cnp("c", admin, 1, subjectNS(all), cIngress("r", "Allow", fromNS(all)))),
			want: `ClusterNetworkPolicy c: spec.ingress[0].action: "Allow" is not Accept, Deny or Pass`},
		{name: "CNP rule without peers", cnps: cnps(cnp("c", admin, 1, subjectNS(all), cEgress("r", deny, nil))),
			want: "ClusterNetworkPolicy c: spec.egress[0]: a rule needs at least one peer"},
		{name: "CNP peer with two fields", cnps: cnps(cnp("c", admin, 1, subjectNS(all), cEgress("r", deny, []cnpv1.ClusterNetworkPolicyEgressPeer{{Namespaces: all, Networks: []cnpv1.CIDR{"10.0.0.0/8"}}}))),
			want: "spec.egress[0].peers[0]: exactly one field of a peer must be set"},
		{name: "CNP network", cnps: cnps(cnp("c", admin, 1, subjectNS(all), cEgress("r", deny, toNetworks("10.0.0.300/8")))),
			want: `spec.egress[0].peers[0].networks[0]: "10.0.0.300/8" is not a CIDR`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := netpol.Standard(tc.cnps, tc.nps)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := netpol.NewClusterTier("Developer", nil); err == nil {
		t.Error("an unknown tier is no error")
	}
}

// TestCompileNFTRefusesBadInterfaceNames: an interface name goes into the script quoted, so a
// name Linux would not take (too long, a quote, a space) is an error, not a broken or
// rewritten ruleset.
func TestCompileNFTRefusesBadInterfaceNames(t *testing.T) {
	e, err := netpol.Standard(nil, []networkingv1.NetworkPolicy{testNetworkPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	u := &netpol.Universe{Pods: []*netpol.Pod{db, frontend}}
	for _, name := range []string{"", "veth0123456789abc", `veth"; flush ruleset`, "veth 1"} {
		if _, err := netpol.CompileNFT(e, u, []netpol.LocalPod{{Pod: db, Interface: name}}); err == nil || !strings.Contains(err.Error(), "pod default/db") {
			t.Errorf("interface %q: error %v, want one naming the pod", name, err)
		}
	}
	script, err := netpol.CompileNFT(e, u, []netpol.LocalPod{{Pod: db, Interface: "vethdb"}, {Pod: hostPod, Interface: "eth0"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(script, `iifname "vethdb" jump`) || strings.Contains(script, `"eth0"`) {
		t.Errorf("want chains for db's interface and none for the host-network pod's:\n%s", script)
	}
}
