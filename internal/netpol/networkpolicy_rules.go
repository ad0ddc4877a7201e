package netpol

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Rules implements Layer: nothing for a pod no policy selects for d; else the pod's own node
// passes (it is always allowed by NetworkPolicy), each rule of the selecting policies
// accepts, and a last rule denies the rest.
func (l *NetworkPolicies) Rules(d Direction, subject *Pod, u *Universe) []Rule {
	selecting := l.selecting(subject, d)
	if len(selecting) == 0 {
		return nil
	}
	var out []Rule
	if own := nodeBlocks(subject.NodeName, u); len(own) > 0 {
		out = append(out, Rule{Verdict: Pass, Policy: "(node)", Name: subject.NodeName, Matches: blocksMatch(own, nil)})
	}
	for _, p := range selecting {
		for _, r := range p.rules[d] {
			out = append(out, Rule{Verdict: Accept, Policy: p.name, Name: r.name, Matches: r.resolve(d, subject, u)})
		}
	}
	return append(out, Rule{Verdict: Deny, Policy: selecting[0].name, Name: "(isolation)", Matches: blocksMatch(everywhere, nil)})
}

func nodeBlocks(name string, u *Universe) []addrBlock {
	var out []addrBlock
	for _, n := range u.Nodes {
		if n.Name == name && name != "" {
			for _, ip := range n.IPs {
				out = append(out, addrBlock{net: netip.PrefixFrom(ip, ip.BitLen())})
			}
		}
	}
	return out
}

func (r npRule) resolve(d Direction, subject *Pod, u *Universe) []Match {
	blocks := everywhere
	if len(r.peers) > 0 {
		blocks = nil
		for _, p := range r.peers {
			if p.block != nil {
				blocks = append(blocks, addrBlock{net: p.block.cidr, except: p.block.except})
			} else {
				blocks = append(blocks, podBlocks(p.pods, u)...)
			}
		}
	}
	specs := make([]portSpec, 0, len(r.ports))
	for _, p := range r.ports {
		specs = append(specs, npPortSpec(p))
	}
	return resolve(d, subject, blocks, specs, u)
}

func npPortSpec(p networkingv1.NetworkPolicyPort) portSpec {
	s := portSpec{proto: corev1.ProtocolTCP}
	if p.Protocol != nil {
		s.proto = *p.Protocol
	}
	switch {
	case p.Port == nil:
	case p.Port.Type == intstr.String:
		s.named = p.Port.StrVal
	case p.EndPort != nil:
		s.from, s.to = p.Port.IntVal, *p.EndPort
	default:
		s.from, s.to = p.Port.IntVal, p.Port.IntVal
	}
	return s
}

// String names the rule for a data path's comments.
func (r Rule) String() string { return fmt.Sprintf("%s %s %s", r.Verdict, r.Policy, r.Name) }
