package netpol

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// ClusterTier is one tier (Admin or Baseline) of ClusterNetworkPolicy, checked and in order.
type ClusterTier struct {
	tier     cnpv1.Tier
	policies []cnpPolicy
}

type cnpPolicy struct {
	name     string
	priority int32
	subject  podSelection
	rules    map[Direction][]cnpRule
}

// cnpRule applies its action to connections with any of its peers and any of its protocols
// (no protocols: every one).
type cnpRule struct {
	name      string
	action    cnpv1.ClusterNetworkPolicyRuleAction
	peers     []cnpPeer
	protocols []cnpv1.ClusterNetworkPolicyProtocol
	// failClosed is set for a rule the API says to fail closed on (a peer or protocol with no
	// field this version knows): it then matches every connection, as a Deny.
	failClosed string
}

type cnpPeer struct {
	pods     *podSelection
	nodes    labels.Selector
	networks []netip.Prefix
}

// NewClusterTier checks and orders the policies of the tier (others are ignored): by
// priority, lower first; at equal priority the API leaves the order to the implementation,
// and podsg takes the name, so that the verdict is the same on every node and every run.
func NewClusterTier(tier cnpv1.Tier, cnps []cnpv1.ClusterNetworkPolicy) (*ClusterTier, error) {
	if tier != cnpv1.AdminTier && tier != cnpv1.BaselineTier {
		return nil, fmt.Errorf("tier %q is not %s or %s", tier, cnpv1.AdminTier, cnpv1.BaselineTier)
	}
	l := &ClusterTier{tier: tier}
	for i := range cnps {
		if cnps[i].Spec.Tier != tier {
			continue
		}
		p, err := compileCNP(&cnps[i])
		if err != nil {
			return nil, fmt.Errorf("ClusterNetworkPolicy %s: %w", cnps[i].Name, err)
		}
		l.policies = append(l.policies, p)
	}
	slices.SortFunc(l.policies, func(a, b cnpPolicy) int {
		return cmp.Or(cmp.Compare(a.priority, b.priority), cmp.Compare(a.name, b.name))
	})
	return l, nil
}

func compileCNP(p *cnpv1.ClusterNetworkPolicy) (cnpPolicy, error) {
	if p.Spec.Priority < 0 || p.Spec.Priority > 1000 {
		return cnpPolicy{}, fmt.Errorf("spec.priority %d is not within 0..1000", p.Spec.Priority)
	}
	subject, err := compileSubject(p.Spec.Subject)
	if err != nil {
		return cnpPolicy{}, err
	}
	out := cnpPolicy{name: p.Name, priority: p.Spec.Priority, subject: subject, rules: map[Direction][]cnpRule{}}
	for i, r := range p.Spec.Ingress {
		peers := make([]cnpv1.ClusterNetworkPolicyEgressPeer, len(r.From))
		for j, f := range r.From {
			peers[j] = cnpv1.ClusterNetworkPolicyEgressPeer{Namespaces: f.Namespaces, Pods: f.Pods}
		}
		rule, err := compileCNPRule(fmt.Sprintf("spec.ingress[%d]", i), r.Name, r.Action, peers, r.Protocols)
		if err != nil {
			return cnpPolicy{}, err
		}
		out.rules[Ingress] = append(out.rules[Ingress], rule)
	}
	for i, r := range p.Spec.Egress {
		rule, err := compileCNPRule(fmt.Sprintf("spec.egress[%d]", i), r.Name, r.Action, r.To, r.Protocols)
		if err != nil {
			return cnpPolicy{}, err
		}
		out.rules[Egress] = append(out.rules[Egress], rule)
	}
	return out, nil
}

func compileSubject(s cnpv1.ClusterNetworkPolicySubject) (podSelection, error) {
	switch {
	case s.Namespaces != nil && s.Pods == nil:
		nss, err := selector(s.Namespaces, "spec.subject.namespaces")
		return podSelection{namespaces: nss}, err
	case s.Pods != nil && s.Namespaces == nil:
		return compileNamespacedPod(s.Pods, "spec.subject.pods")
	}
	return podSelection{}, fmt.Errorf("spec.subject: exactly one of namespaces and pods must be set")
}

func compileNamespacedPod(p *cnpv1.NamespacedPod, field string) (podSelection, error) {
	nss, err := selector(&p.NamespaceSelector, field+".namespaceSelector")
	if err != nil {
		return podSelection{}, err
	}
	pods, err := selector(&p.PodSelector, field+".podSelector")
	return podSelection{namespaces: nss, pods: pods}, err
}

func compileCNPRule(field, name string, action cnpv1.ClusterNetworkPolicyRuleAction, peers []cnpv1.ClusterNetworkPolicyEgressPeer, protos []cnpv1.ClusterNetworkPolicyProtocol) (cnpRule, error) {
	if !slices.Contains([]cnpv1.ClusterNetworkPolicyRuleAction{cnpv1.ClusterNetworkPolicyRuleActionAccept, cnpv1.ClusterNetworkPolicyRuleActionDeny, cnpv1.ClusterNetworkPolicyRuleActionPass}, action) {
		return cnpRule{}, fmt.Errorf("%s.action: %q is not Accept, Deny or Pass", field, action)
	}
	if len(peers) == 0 {
		return cnpRule{}, fmt.Errorf("%s: a rule needs at least one peer", field)
	}
	r := cnpRule{name: cmp.Or(name, field), action: action, protocols: protos}
	for i, p := range peers {
		peer, unknown, err := compileCNPPeer(fmt.Sprintf("%s.peers[%d]", field, i), p)
		if err != nil {
			return cnpRule{}, err
		}
		if unknown != "" {
			r.failClosed = unknown
			continue
		}
		r.peers = append(r.peers, peer)
	}
	for i, p := range protos {
		if err := checkCNPPorts(p); err != nil {
			return cnpRule{}, fmt.Errorf("%s.protocols[%d]: %w", field, i, err)
		}
		if err := checkCNPProtocol(p); err != nil {
			r.failClosed = fmt.Sprintf("%s.protocols[%d]: %v", field, i, err)
		}
	}
	return r, nil
}

// compileCNPPeer compiles a peer; a peer with no field set comes back as unknown (the API:
// a newer CRD's field this version does not know), which the rule fails closed on.
func compileCNPPeer(field string, p cnpv1.ClusterNetworkPolicyEgressPeer) (cnpPeer, string, error) {
	var out cnpPeer
	var err error
	set := 0
	if p.Namespaces != nil {
		set++
		out.pods = &podSelection{}
		out.pods.namespaces, err = selector(p.Namespaces, field+".namespaces")
	}
	if p.Pods != nil && err == nil {
		set++
		var s podSelection
		s, err = compileNamespacedPod(p.Pods, field+".pods")
		out.pods = &s
	}
	if p.Nodes != nil && err == nil {
		set++
		out.nodes, err = selector(p.Nodes, field+".nodes")
	}
	for i, n := range p.Networks {
		c, cerr := cidr(string(n), fmt.Sprintf("%s.networks[%d]", field, i))
		if cerr != nil {
			return cnpPeer{}, "", cerr
		}
		out.networks = append(out.networks, c)
	}
	if len(p.Networks) > 0 {
		set++
	}
	if len(p.DomainNames) > 0 {
		// A domain name says nothing about an address without the DNS answers the node saw:
		// podsg does not support it yet, so the peer matches nothing (Accept only, by the API).
		set++
	}
	switch {
	case err != nil:
		return cnpPeer{}, "", err
	case set == 0:
		return cnpPeer{}, field + " sets no field podsg knows", nil
	case set > 1:
		return cnpPeer{}, "", fmt.Errorf("%s: exactly one field of a peer must be set", field)
	}
	return out, "", nil
}

// checkCNPPorts refuses ports no packet has and reversed ranges, which the CRD's validation
// refuses too: a data path could not express them.
func checkCNPPorts(p cnpv1.ClusterNetworkPolicyProtocol) error {
	for _, port := range []*cnpv1.Port{tcpPort(p.TCP), udpPort(p.UDP), sctpPort(p.SCTP)} {
		switch {
		case port == nil:
		case port.Range != nil && (port.Range.Start < 1 || port.Range.End > 65535 || port.Range.Start >= port.Range.End):
			return fmt.Errorf("range %d-%d is not an increasing range within 1..65535", port.Range.Start, port.Range.End)
		case port.Range == nil && (port.Number < 1 || port.Number > 65535):
			return fmt.Errorf("port %d is not within 1..65535", port.Number)
		}
	}
	return nil
}

func tcpPort(p *cnpv1.ClusterNetworkPolicyProtocolTCP) *cnpv1.Port {
	if p == nil {
		return nil
	}
	return p.DestinationPort
}

func udpPort(p *cnpv1.ClusterNetworkPolicyProtocolUDP) *cnpv1.Port {
	if p == nil {
		return nil
	}
	return p.DestinationPort
}

func sctpPort(p *cnpv1.ClusterNetworkPolicyProtocolSCTP) *cnpv1.Port {
	if p == nil {
		return nil
	}
	return p.DestinationPort
}

func checkCNPProtocol(p cnpv1.ClusterNetworkPolicyProtocol) error {
	set := 0
	for _, ok := range []bool{p.TCP != nil, p.UDP != nil, p.SCTP != nil, p.DestinationNamedPort != ""} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("exactly one of tcp, udp, sctp and destinationNamedPort must be set")
	}
	return nil
}

// Name implements Layer.
func (l *ClusterTier) Name() string { return "ClusterNetworkPolicy " + string(l.tier) + " tier" }

// Judge implements Layer: the first rule, in policy order then rule order, of a policy whose
// subject is the pod and that matches the connection decides; Pass hands it to the next tier.
func (l *ClusterTier) Judge(d Direction, c Connection) Step {
	subject, peer := c.subject(d)
	for _, p := range l.policies {
		if !p.subject.matches(subject) {
			continue
		}
		for _, r := range p.rules[d] {
			if r.failClosed != "" {
				if r.action == cnpv1.ClusterNetworkPolicyRuleActionAccept {
					continue // failing closed, an Accept matches nothing
				}
				return Step{Layer: l.Name(), Verdict: Deny, Policy: p.name, Rule: r.name, Why: "fails closed: " + r.failClosed}
			}
			if r.peerMatches(peer) && r.protocolMatches(c) {
				return Step{Layer: l.Name(), Verdict: Verdict(r.action), Policy: p.name, Rule: r.name,
					Why: fmt.Sprintf("the first matching %s rule of the tier, priority %d", d, p.priority)}
			}
		}
	}
	return Step{Layer: l.Name(), Verdict: NoDecision, Why: fmt.Sprintf("no %s rule of the tier matches", d)}
}

func (r cnpRule) peerMatches(peer Endpoint) bool {
	for _, p := range r.peers {
		if p.pods != nil && p.pods.matches(peer.policyPod()) ||
			p.nodes != nil && peer.Node != nil && p.nodes.Matches(labels.Set(peer.Node.Labels)) {
			return true
		}
		for _, n := range p.networks {
			if n.Contains(peer.IP) {
				return true
			}
		}
	}
	return false
}

func (r cnpRule) protocolMatches(c Connection) bool {
	if len(r.protocols) == 0 {
		return true
	}
	for _, p := range r.protocols {
		if cnpProtocolMatches(p, c) {
			return true
		}
	}
	return false
}

func cnpProtocolMatches(p cnpv1.ClusterNetworkPolicyProtocol, c Connection) bool {
	switch {
	case p.TCP != nil:
		return c.Protocol == corev1.ProtocolTCP && cnpPortMatches(p.TCP.DestinationPort, c.Port)
	case p.UDP != nil:
		return c.Protocol == corev1.ProtocolUDP && cnpPortMatches(p.UDP.DestinationPort, c.Port)
	case p.SCTP != nil:
		return c.Protocol == corev1.ProtocolSCTP && cnpPortMatches(p.SCTP.DestinationPort, c.Port)
	}
	// A named port is the destination pod's container port of that name, in its protocol.
	pod := c.Dst.policyPod()
	return pod != nil && namedPortIs(pod, p.DestinationNamedPort, c.Protocol, c.Port)
}

func cnpPortMatches(p *cnpv1.Port, port int32) bool {
	switch {
	case p == nil:
		return true
	case p.Range != nil:
		return p.Range.Start <= port && port <= p.Range.End
	}
	return p.Number == port
}
