package netpol

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// Rules implements Layer: the rules of the policies whose subject is the pod, in the tier's
// order; a rule failing closed denies everything (Deny, Pass) or is left out (Accept).
func (l *ClusterTier) Rules(d Direction, subject *Pod, u *Universe) []Rule {
	var out []Rule
	for _, p := range l.policies {
		if !p.subject.matches(subject) {
			continue
		}
		for _, r := range p.rules[d] {
			switch {
			case r.failClosed != "" && r.action == cnpv1.ClusterNetworkPolicyRuleActionAccept:
			case r.failClosed != "":
				out = append(out, Rule{Verdict: Deny, Policy: p.name, Name: r.name, Matches: blocksMatch(everywhere, nil)})
			default:
				out = append(out, Rule{Verdict: Verdict(r.action), Policy: p.name, Name: r.name, Matches: r.resolve(d, subject, u)})
			}
		}
	}
	return out
}

func (r cnpRule) resolve(d Direction, subject *Pod, u *Universe) []Match {
	var blocks []addrBlock
	for _, p := range r.peers {
		switch {
		case p.pods != nil:
			blocks = append(blocks, podBlocks(p.pods, u)...)
		case p.nodes != nil:
			blocks = append(blocks, nodeSelectorBlocks(p.nodes, u)...)
		}
		for _, n := range p.networks {
			blocks = append(blocks, addrBlock{net: n})
		}
	}
	specs := make([]portSpec, 0, len(r.protocols))
	for _, p := range r.protocols {
		specs = append(specs, cnpPortSpec(p))
	}
	return resolve(d, subject, blocks, specs, u)
}

func nodeSelectorBlocks(sel labels.Selector, u *Universe) []addrBlock {
	var out []addrBlock
	for _, n := range u.Nodes {
		if sel.Matches(labels.Set(n.Labels)) {
			for _, ip := range n.IPs {
				out = append(out, addrBlock{net: netip.PrefixFrom(ip, ip.BitLen())})
			}
		}
	}
	return out
}

func cnpPortSpec(p cnpv1.ClusterNetworkPolicyProtocol) portSpec {
	switch {
	case p.TCP != nil:
		return withPort(corev1.ProtocolTCP, p.TCP.DestinationPort)
	case p.UDP != nil:
		return withPort(corev1.ProtocolUDP, p.UDP.DestinationPort)
	case p.SCTP != nil:
		return withPort(corev1.ProtocolSCTP, p.SCTP.DestinationPort)
	}
	return portSpec{named: p.DestinationNamedPort}
}

func withPort(proto corev1.Protocol, p *cnpv1.Port) portSpec {
	switch {
	case p == nil:
		return portSpec{proto: proto}
	case p.Range != nil:
		return portSpec{proto: proto, from: p.Range.Start, to: p.Range.End}
	}
	return portSpec{proto: proto, from: p.Number, to: p.Number}
}
