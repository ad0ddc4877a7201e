package netpol

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// NetworkPolicyLayer is the networking.k8s.io/v1 NetworkPolicy tier.
const NetworkPolicyLayer = "NetworkPolicy"

// NetworkPolicies is the NetworkPolicy layer: the namespaced policies, checked.
type NetworkPolicies struct {
	policies []npPolicy
}

type npPolicy struct {
	name      string // namespace/name
	namespace string
	pods      labels.Selector
	types     map[Direction]bool
	rules     map[Direction][]npRule
}

// npRule allows the connections from or to any of its peers on any of its ports; no peers
// means every peer, no ports every port (and protocol).
type npRule struct {
	name  string
	peers []npPeer
	ports []networkingv1.NetworkPolicyPort
}

// npPeer is one peer: an ipBlock, or pods chosen by namespace and pod selectors.
type npPeer struct {
	block *ipBlock
	pods  *podSelection
}

type ipBlock struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

func (b ipBlock) contains(a netip.Addr) bool {
	if !b.cidr.Contains(a) {
		return false
	}
	for _, e := range b.except {
		if e.Contains(a) {
			return false
		}
	}
	return true
}

// NewNetworkPolicies checks and compiles the policies; an error names the policy and field.
func NewNetworkPolicies(nps []networkingv1.NetworkPolicy) (*NetworkPolicies, error) {
	l := &NetworkPolicies{}
	for i := range nps {
		p, err := compileNP(&nps[i])
		if err != nil {
			return nil, fmt.Errorf("NetworkPolicy %s/%s: %w", nps[i].Namespace, nps[i].Name, err)
		}
		l.policies = append(l.policies, p)
	}
	slices.SortFunc(l.policies, func(a, b npPolicy) int { return cmp.Compare(a.name, b.name) })
	return l, nil
}

func compileNP(np *networkingv1.NetworkPolicy) (npPolicy, error) {
	pods, err := selector(&np.Spec.PodSelector, "spec.podSelector")
	if err != nil {
		return npPolicy{}, err
	}
	for i, t := range np.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			return npPolicy{}, fmt.Errorf("spec.policyTypes[%d]: %q is not Ingress or Egress", i, t)
		}
	}
	p := npPolicy{name: np.Namespace + "/" + np.Name, namespace: np.Namespace, pods: pods,
		types: policyTypes(np), rules: map[Direction][]npRule{}}
	for i, r := range np.Spec.Ingress {
		rule, err := compileNPRule(fmt.Sprintf("spec.ingress[%d]", i), np.Namespace, r.From, r.Ports, "from")
		if err != nil {
			return npPolicy{}, err
		}
		p.rules[Ingress] = append(p.rules[Ingress], rule)
	}
	for i, r := range np.Spec.Egress {
		rule, err := compileNPRule(fmt.Sprintf("spec.egress[%d]", i), np.Namespace, r.To, r.Ports, "to")
		if err != nil {
			return npPolicy{}, err
		}
		p.rules[Egress] = append(p.rules[Egress], rule)
	}
	return p, nil
}

// policyTypes are the directions the policy isolates: as given, or, when omitted, ingress
// always and egress when the policy has egress rules (the API's defaulting).
func policyTypes(np *networkingv1.NetworkPolicy) map[Direction]bool {
	types := map[Direction]bool{}
	if len(np.Spec.PolicyTypes) == 0 {
		types[Ingress] = true
		types[Egress] = len(np.Spec.Egress) > 0
		return types
	}
	for _, t := range np.Spec.PolicyTypes {
		types[Direction(strings.ToLower(string(t)))] = true
	}
	return types
}

func compileNPRule(field, ns string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, peerField string) (npRule, error) {
	r := npRule{name: field, ports: ports}
	for i, p := range peers {
		peer, err := compileNPPeer(fmt.Sprintf("%s.%s[%d]", field, peerField, i), ns, p)
		if err != nil {
			return npRule{}, err
		}
		r.peers = append(r.peers, peer)
	}
	for i, p := range ports {
		if err := checkNPPort(p); err != nil {
			return npRule{}, fmt.Errorf("%s.ports[%d]: %w", field, i, err)
		}
	}
	return r, nil
}

func compileNPPeer(field, ns string, p networkingv1.NetworkPolicyPeer) (npPeer, error) {
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return npPeer{}, fmt.Errorf("%s: ipBlock cannot be combined with a selector", field)
		}
		b, err := compileIPBlock(field+".ipBlock", p.IPBlock)
		return npPeer{block: &b}, err
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return npPeer{}, fmt.Errorf("%s: a peer needs podSelector, namespaceSelector or ipBlock", field)
	}
	pods, err := selector(p.PodSelector, field+".podSelector")
	if err != nil {
		return npPeer{}, err
	}
	nss, err := selector(p.NamespaceSelector, field+".namespaceSelector")
	if err != nil {
		return npPeer{}, err
	}
	if p.NamespaceSelector == nil { // a podSelector alone: the policy's own namespace
		nss = labels.SelectorFromSet(labels.Set{NamespaceNameLabel: ns})
	}
	return npPeer{pods: &podSelection{namespaces: nss, pods: pods}}, nil
}

func compileIPBlock(field string, b *networkingv1.IPBlock) (ipBlock, error) {
	c, err := cidr(b.CIDR, field+".cidr")
	if err != nil {
		return ipBlock{}, err
	}
	out := ipBlock{cidr: c}
	for i, e := range b.Except {
		ex, err := cidr(e, fmt.Sprintf("%s.except[%d]", field, i))
		if err != nil {
			return ipBlock{}, err
		}
		if !c.Contains(ex.Addr()) || ex.Bits() < c.Bits() {
			return ipBlock{}, fmt.Errorf("%s.except[%d]: %s is not within %s", field, i, ex, c)
		}
		out.except = append(out.except, ex)
	}
	return out, nil
}

func checkNPPort(p networkingv1.NetworkPolicyPort) error {
	if p.Protocol != nil && !slices.Contains([]corev1.Protocol{corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP}, *p.Protocol) {
		return fmt.Errorf("protocol %q is not TCP, UDP or SCTP", *p.Protocol)
	}
	if p.Port != nil && p.Port.Type == intstr.Int && (p.Port.IntVal < 1 || p.Port.IntVal > 65535) {
		return fmt.Errorf("port %d is not within 1..65535", p.Port.IntVal)
	}
	if p.Port != nil && p.Port.Type == intstr.String && p.Port.StrVal == "" {
		return fmt.Errorf("a named port needs a name")
	}
	if p.EndPort == nil {
		return nil
	}
	if p.Port == nil || p.Port.Type != intstr.Int {
		return fmt.Errorf("endPort %d needs a numeric port", *p.EndPort)
	}
	if *p.EndPort < p.Port.IntVal || *p.EndPort > 65535 {
		return fmt.Errorf("endPort %d is not within port %d..65535", *p.EndPort, p.Port.IntVal)
	}
	return nil
}

// Name implements Layer.
func (l *NetworkPolicies) Name() string { return NetworkPolicyLayer }

// Judge implements Layer: a pod no policy selects for d is not isolated (NoDecision); a
// selected pod gets what the union of the selecting policies' rules allows, and nothing else.
func (l *NetworkPolicies) Judge(d Direction, c Connection) Step {
	subject, peer := c.subject(d)
	if subject.NodeName != "" && peer.nodeName() == subject.NodeName {
		return Step{Layer: NetworkPolicyLayer, Verdict: NoDecision,
			Why: "traffic between a pod and its own node is always allowed by NetworkPolicy"}
	}
	var selecting []string
	for _, p := range l.selecting(subject, d) {
		selecting = append(selecting, p.name)
		for _, r := range p.rules[d] {
			if r.matches(peer, c) {
				return Step{Layer: NetworkPolicyLayer, Verdict: Accept, Policy: p.name, Rule: r.name,
					Why: fmt.Sprintf("a rule of a policy selecting the pod allows %s", d)}
			}
		}
	}
	if len(selecting) == 0 {
		return Step{Layer: NetworkPolicyLayer, Verdict: NoDecision, Why: fmt.Sprintf("no NetworkPolicy selects the pod for %s", d)}
	}
	return Step{Layer: NetworkPolicyLayer, Verdict: Deny, Policy: strings.Join(selecting, ","), Rule: "(isolation)",
		Why: fmt.Sprintf("the pod is isolated for %s and no rule of the policies selecting it allows this", d)}
}

// selecting are the policies that isolate the pod for d.
func (l *NetworkPolicies) selecting(pod *Pod, d Direction) []*npPolicy {
	var out []*npPolicy
	for i := range l.policies {
		if p := &l.policies[i]; p.selects(pod, d) {
			out = append(out, p)
		}
	}
	return out
}

// selects reports whether the policy isolates the pod for d.
func (p *npPolicy) selects(pod *Pod, d Direction) bool {
	return p.namespace == pod.Namespace && p.types[d] && p.pods.Matches(labels.Set(pod.Labels))
}

func (r npRule) matches(peer Endpoint, c Connection) bool {
	return r.peerMatches(peer) && r.portMatches(c)
}

func (r npRule) peerMatches(peer Endpoint) bool {
	if len(r.peers) == 0 {
		return true
	}
	for _, p := range r.peers {
		if p.block != nil && p.block.contains(peer.IP) || p.pods != nil && p.pods.matches(peer.policyPod()) {
			return true
		}
	}
	return false
}

func (r npRule) portMatches(c Connection) bool {
	if len(r.ports) == 0 {
		return true
	}
	for _, p := range r.ports {
		if npPortMatches(p, c) {
			return true
		}
	}
	return false
}

func npPortMatches(p networkingv1.NetworkPolicyPort, c Connection) bool {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	switch {
	case c.Protocol != proto:
		return false
	case p.Port == nil:
		return true
	case p.Port.Type == intstr.String:
		return namedPortIs(c.Dst.policyPod(), p.Port.StrVal, proto, c.Port)
	case p.EndPort != nil:
		return p.Port.IntVal <= c.Port && c.Port <= *p.EndPort
	}
	return p.Port.IntVal == c.Port
}

// namedPortIs reports whether the pod has a container port of that name and protocol whose
// number is port: a named port means the destination pod's port, so a peer that is not a pod
// matches none.
func namedPortIs(pod *Pod, name string, proto corev1.Protocol, port int32) bool {
	if pod == nil {
		return false
	}
	for _, cp := range pod.Ports {
		cpProto := cmp.Or(cp.Protocol, corev1.ProtocolTCP)
		if cp.Name == name && cpProto == proto && cp.ContainerPort == port {
			return true
		}
	}
	return false
}
