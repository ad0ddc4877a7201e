package netpol

import (
	"net/netip"
	"slices"

	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// Rules implements Layer: the rules of the policies that apply to the pod, in the tier's
// order (Log rules left out: they decide nothing), then, when any applied, the end of the
// tier: traffic with the pod's own node passes when only Kubernetes NetworkPolicies applied,
// and the rest is denied.
func (t *CalicoTier) Rules(d Direction, subject *Pod, u *Universe) []Rule {
	var out []Rule
	var first string
	calicoApplied := false
	for _, e := range t.entries {
		switch {
		case e.knp != nil && e.knp.selects(subject, d):
			for _, r := range e.knp.rules[d] {
				out = append(out, Rule{Verdict: Accept, Policy: e.name, Name: r.name, Matches: r.resolve(d, subject, u)})
			}
		case e.calico != nil && e.calico.applies(subject, d):
			calicoApplied = true
			for _, r := range e.calico.rules[d] {
				if r.action == calicov3.Log {
					continue
				}
				out = append(out, Rule{Verdict: calicoVerdict(r.action), Policy: e.name, Name: r.name, Matches: r.resolve(d, subject, u)})
			}
		default:
			continue
		}
		if first == "" {
			first = e.name
		}
	}
	if first == "" {
		return nil
	}
	if own := nodeBlocks(subject.NodeName, u); len(own) > 0 && !calicoApplied {
		out = append(out, Rule{Verdict: Pass, Policy: "(node)", Name: subject.NodeName, Matches: blocksMatch(own, nil)})
	}
	return append(out, Rule{Verdict: Deny, Policy: first, Name: "(end of tier)", Matches: blocksMatch(everywhere, nil)})
}

func calicoVerdict(a calicov3.Action) Verdict {
	switch a {
	case calicov3.Allow:
		return Accept
	case calicov3.Deny:
		return Deny
	}
	return Pass
}

// resolve turns the rule into matches on the peer's address and the destination port. The
// subject's own end is checked here, once: a rule whose subject side does not match the pod
// matches nothing.
func (r calicoRule) resolve(d Direction, subject *Pod, u *Universe) []Match {
	self, peer := r.dst, r.src
	if d == Egress {
		self, peer = r.src, r.dst
	}
	if len(subject.IPs) == 0 || !self.matches(Endpoint{Pod: subject, IP: subject.IPs[0]}) {
		return nil
	}
	blocks := peer.blocks(u)
	if r.family != 0 {
		blocks = slices.DeleteFunc(blocks, func(b addrBlock) bool { return b.net.Addr().Is4() != (r.family == 4) })
	}
	var ports []portSpec
	switch {
	case len(r.dst.notPorts) > 0:
		ports = r.dst.portsWithout()
	case len(r.dst.ports) > 0:
		ports = r.dst.ports
	case r.protocol != "":
		ports = []portSpec{{proto: r.protocol}}
	}
	if len(ports) == 0 && (len(r.dst.notPorts) > 0) {
		return nil // every port excluded
	}
	return resolve(d, subject, blocks, ports, u)
}

// blocks are the addresses the entity covers: the pods it names, one address each, or, when
// it names no pods, addresses (nets or everywhere) less notNets and the pods notSelector
// excludes.
func (en calicoEntity) blocks(u *Universe) []addrBlock {
	if en.pods && (en.scope.namespaces != nil || en.scope.sa || en.selector != nil) {
		var out []addrBlock
		for _, p := range u.Pods {
			for _, ip := range p.policyPodIPs() {
				if en.inNets(ip) && en.podMatches(p) {
					out = append(out, addrBlock{net: netip.PrefixFrom(ip, ip.BitLen())})
				}
			}
		}
		return out
	}
	exclude := slices.Clone(en.notNets)
	if en.notSelector != nil {
		for _, p := range u.Pods {
			if !en.podMatches(p) {
				for _, ip := range p.policyPodIPs() {
					exclude = append(exclude, netip.PrefixFrom(ip, ip.BitLen()))
				}
			}
		}
	}
	base := en.nets
	if len(base) == 0 {
		base = []netip.Prefix{everywhere[0].net, everywhere[1].net}
	}
	return netsExcept(base, exclude)
}

func (en calicoEntity) inNets(ip netip.Addr) bool {
	return (len(en.nets) == 0 || slices.ContainsFunc(en.nets, func(n netip.Prefix) bool { return n.Contains(ip) })) &&
		!slices.ContainsFunc(en.notNets, func(n netip.Prefix) bool { return n.Contains(ip) })
}

// netsExcept are the nets less the excluded prefixes: a net an exclusion covers is left out,
// an exclusion within a net becomes its except (prefixes nest or are disjoint).
func netsExcept(nets, exclude []netip.Prefix) []addrBlock {
	var out []addrBlock
	for _, b := range nets {
		if slices.ContainsFunc(exclude, func(x netip.Prefix) bool { return x.Bits() <= b.Bits() && x.Contains(b.Addr()) }) {
			continue
		}
		blk := addrBlock{net: b}
		for _, x := range exclude {
			if x.Bits() > b.Bits() && b.Contains(x.Addr()) {
				blk.except = append(blk.except, x)
			}
		}
		out = append(out, blk)
	}
	return out
}

// portsWithout are the rule's ports (all of the protocol's when none) less notPorts, as
// numeric ranges.
func (en calicoEntity) portsWithout() []portSpec {
	proto := en.notPorts[0].proto
	ranges := [][2]int32{{1, 65535}}
	if len(en.ports) > 0 {
		ranges = nil
		for _, p := range en.ports {
			ranges = append(ranges, [2]int32{p.from, p.to})
		}
	}
	for _, x := range en.notPorts {
		var next [][2]int32
		for _, r := range ranges {
			if x.to < r[0] || x.from > r[1] {
				next = append(next, r)
				continue
			}
			if r[0] < x.from {
				next = append(next, [2]int32{r[0], x.from - 1})
			}
			if x.to < r[1] {
				next = append(next, [2]int32{x.to + 1, r[1]})
			}
		}
		ranges = next
	}
	out := make([]portSpec, 0, len(ranges))
	for _, r := range ranges {
		out = append(out, portSpec{proto: proto, from: r[0], to: r[1]})
	}
	return out
}
