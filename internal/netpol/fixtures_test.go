package netpol_test

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
)

// The cluster of the table tests: the pods of the Kubernetes documentation's examples.
var (
	nodeA = &netpol.Node{Name: "node-a", Labels: map[string]string{"zone": "a"}}
	nodeB = &netpol.Node{Name: "node-b", Labels: map[string]string{"zone": "b"}}

	db = pod("default", "db", "10.1.0.10", map[string]string{"role": "db"},
		corev1.ContainerPort{Name: "redis", ContainerPort: 6379},
		corev1.ContainerPort{Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolUDP})
	frontend = pod("default", "frontend", "10.1.0.11", map[string]string{"role": "frontend"})
	client   = pod("default", "client", "10.1.0.12", map[string]string{"role": "client"})
	other    = withNS(pod("myproject", "other", "10.1.1.10", map[string]string{"role": "other"}), map[string]string{"project": "myproject"})
	alice    = withNS(pod("alice", "aclient", "10.1.2.10", map[string]string{"role": "client"}), map[string]string{"user": "alice"})
	aliceSrv = withNS(pod("alice", "aserver", "10.1.2.11", map[string]string{"role": "server"}), map[string]string{"user": "alice"})
	monitor  = withNS(pod("monitoring", "prom", "10.1.3.10", map[string]string{"app": "prom"}), map[string]string{"purpose": "monitoring"})
	hostPod  = func() *netpol.Pod {
		p := pod("kube-system", "hostnet", "192.168.0.2", map[string]string{"role": "db"})
		p.HostNetwork, p.NodeName = true, nodeB.Name
		return p
	}()
)

func pod(ns, name, ip string, labels map[string]string, ports ...corev1.ContainerPort) *netpol.Pod {
	return &netpol.Pod{Namespace: ns, Name: name, NodeName: nodeA.Name, Labels: labels, Ports: ports,
		IPs: []netip.Addr{netip.MustParseAddr(ip)}, ServiceAccount: "default"}
}

func withNS(p *netpol.Pod, labels map[string]string) *netpol.Pod {
	p.NamespaceLabels = labels
	return p
}

// at is the pod's endpoint; a host-network pod's is its node's too, as the model asks.
func at(p *netpol.Pod) netpol.Endpoint {
	e := netpol.Endpoint{Pod: p, IP: p.IPs[0]}
	if p.HostNetwork {
		for _, n := range []*netpol.Node{nodeA, nodeB} {
			if n.Name == p.NodeName {
				e.Node = n
			}
		}
	}
	return e
}

func ext(ip string) netpol.Endpoint { return netpol.Endpoint{IP: netip.MustParseAddr(ip)} }

func node(n *netpol.Node, ip string) netpol.Endpoint {
	return netpol.Endpoint{Node: n, IP: netip.MustParseAddr(ip)}
}

func tcp(src, dst netpol.Endpoint, port int32) netpol.Connection {
	return netpol.Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolTCP, Port: port}
}

func udp(src, dst netpol.Endpoint, port int32) netpol.Connection {
	return netpol.Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolUDP, Port: port}
}

func sctp(src, dst netpol.Endpoint, port int32) netpol.Connection {
	return netpol.Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolSCTP, Port: port}
}

func icmp(src, dst netpol.Endpoint) netpol.Connection {
	return netpol.Connection{Src: src, Dst: dst, Protocol: netpol.ProtocolICMP}
}

// NetworkPolicy builders.

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func np(ns, name string, pods *metav1.LabelSelector, mutate ...func(*networkingv1.NetworkPolicySpec)) networkingv1.NetworkPolicy {
	p := networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: networkingv1.NetworkPolicySpec{PodSelector: *pods}}
	for _, m := range mutate {
		m(&p.Spec)
	}
	return p
}

func types(t ...networkingv1.PolicyType) func(*networkingv1.NetworkPolicySpec) {
	return func(s *networkingv1.NetworkPolicySpec) { s.PolicyTypes = t }
}

func ingress(from []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicySpec) {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.Ingress = append(s.Ingress, networkingv1.NetworkPolicyIngressRule{From: from, Ports: ports})
	}
}

func egress(to []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) func(*networkingv1.NetworkPolicySpec) {
	return func(s *networkingv1.NetworkPolicySpec) {
		s.Egress = append(s.Egress, networkingv1.NetworkPolicyEgressRule{To: to, Ports: ports})
	}
}

func peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

func podPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPeer(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: s}
}

func nsPodPeer(ns, pods *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pods}
}

func blockPeer(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func port(proto corev1.Protocol, p int32) networkingv1.NetworkPolicyPort {
	v := intstr.FromInt32(p)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

func portRange(proto corev1.Protocol, from, to int32) networkingv1.NetworkPolicyPort {
	p := port(proto, from)
	p.EndPort = &to
	return p
}

func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	v := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &v}
}

// testNetworkPolicy is the documentation's test-network-policy, verbatim.
func testNetworkPolicy() networkingv1.NetworkPolicy {
	return np("default", "test-network-policy", sel("role", "db"),
		types(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress),
		ingress(peers(blockPeer("172.17.0.0/16", "172.17.1.0/24"), nsPeer(sel("project", "myproject")), podPeer(sel("role", "frontend"))),
			port(corev1.ProtocolTCP, 6379)),
		egress(peers(blockPeer("10.0.0.0/24")), port(corev1.ProtocolTCP, 5978)))
}

// ClusterNetworkPolicy builders.

func cnp(name string, tier cnpv1.Tier, priority int32, subject cnpv1.ClusterNetworkPolicySubject, mutate ...func(*cnpv1.ClusterNetworkPolicySpec)) cnpv1.ClusterNetworkPolicy {
	p := cnpv1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: cnpv1.ClusterNetworkPolicySpec{Tier: tier, Priority: priority, Subject: subject}}
	for _, m := range mutate {
		m(&p.Spec)
	}
	return p
}

func subjectNS(s *metav1.LabelSelector) cnpv1.ClusterNetworkPolicySubject {
	return cnpv1.ClusterNetworkPolicySubject{Namespaces: s}
}

func subjectPods(ns, pods *metav1.LabelSelector) cnpv1.ClusterNetworkPolicySubject {
	return cnpv1.ClusterNetworkPolicySubject{Pods: &cnpv1.NamespacedPod{NamespaceSelector: *ns, PodSelector: *pods}}
}

func cIngress(name string, action cnpv1.ClusterNetworkPolicyRuleAction, from []cnpv1.ClusterNetworkPolicyIngressPeer, protos ...cnpv1.ClusterNetworkPolicyProtocol) func(*cnpv1.ClusterNetworkPolicySpec) {
	return func(s *cnpv1.ClusterNetworkPolicySpec) {
		s.Ingress = append(s.Ingress, cnpv1.ClusterNetworkPolicyIngressRule{Name: name, Action: action, From: from, Protocols: protos})
	}
}

func cEgress(name string, action cnpv1.ClusterNetworkPolicyRuleAction, to []cnpv1.ClusterNetworkPolicyEgressPeer, protos ...cnpv1.ClusterNetworkPolicyProtocol) func(*cnpv1.ClusterNetworkPolicySpec) {
	return func(s *cnpv1.ClusterNetworkPolicySpec) {
		s.Egress = append(s.Egress, cnpv1.ClusterNetworkPolicyEgressRule{Name: name, Action: action, To: to, Protocols: protos})
	}
}

func fromNS(s *metav1.LabelSelector) []cnpv1.ClusterNetworkPolicyIngressPeer {
	return []cnpv1.ClusterNetworkPolicyIngressPeer{{Namespaces: s}}
}

func toNetworks(cidrs ...cnpv1.CIDR) []cnpv1.ClusterNetworkPolicyEgressPeer {
	return []cnpv1.ClusterNetworkPolicyEgressPeer{{Networks: cidrs}}
}

func cTCP(p int32) cnpv1.ClusterNetworkPolicyProtocol {
	return cnpv1.ClusterNetworkPolicyProtocol{TCP: &cnpv1.ClusterNetworkPolicyProtocolTCP{DestinationPort: &cnpv1.Port{Number: p}}}
}

func cSCTP(p int32) cnpv1.ClusterNetworkPolicyProtocol {
	return cnpv1.ClusterNetworkPolicyProtocol{SCTP: &cnpv1.ClusterNetworkPolicyProtocolSCTP{DestinationPort: &cnpv1.Port{Number: p}}}
}

func cUDPRange(from, to int32) cnpv1.ClusterNetworkPolicyProtocol {
	return cnpv1.ClusterNetworkPolicyProtocol{UDP: &cnpv1.ClusterNetworkPolicyProtocolUDP{DestinationPort: &cnpv1.Port{Range: &cnpv1.PortRange{Start: from, End: to}}}}
}

const (
	accept = cnpv1.ClusterNetworkPolicyRuleActionAccept
	deny   = cnpv1.ClusterNetworkPolicyRuleActionDeny
	pass   = cnpv1.ClusterNetworkPolicyRuleActionPass
	admin  = cnpv1.AdminTier
	base   = cnpv1.BaselineTier
)

var all = &metav1.LabelSelector{}
