package firewall

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
)

const (
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

// Comment fields are joined by this; Flows splits on it.
const sep = "|"

// Directions in comments and flows.
const (
	Ingress = "ingress"
	Egress  = "egress"
)

// Render computes the fabric's ruleset. Every packet between two ENIs is
// forwarded by the fabric, so one forward chain sees it all:
//
//   - packets of tracked flows pass (return traffic of allowed flows, as
//     security groups are stateful);
//   - a new flow must pass the sender's egress chain (which returns when a
//     rule allows it) and then the receiver's ingress chain (which accepts);
//   - anything else is dropped, including traffic to or from a device the
//     fabric does not know.
//
// Each rule counts what it decided; the comment names ENI, direction,
// group and rule, so Flows can report them.
func Render(vpc *topo.VPC) *Ruleset {
	rs := &Ruleset{}
	byID := make(map[string]*topo.Group, len(vpc.Groups))
	for _, g := range vpc.Groups {
		byID[g.ID] = g
	}
	referenced := map[string]bool{}
	for _, p := range vpc.Ports {
		for _, gid := range p.ENI.Groups {
			if g := byID[gid]; g != nil {
				for _, r := range g.Rules {
					if r.GroupID != "" {
						referenced[r.GroupID] = true
					}
				}
			}
		}
	}
	for _, g := range vpc.Groups {
		if referenced[g.ID] {
			rs.Sets = append(rs.Sets, Set{Name: groupSet(g.ID), Addrs: g.Members})
		}
	}
	fwd := Chain{Name: "forward", Hook: true, Rules: []Rule{
		{CTState: "established,related", Counter: true, Verdict: Accept, Comment: "established"},
		{CTState: "invalid", Counter: true, Verdict: Drop, Comment: "invalid"},
	}}
	for _, p := range vpc.Ports {
		fwd.Rules = append(fwd.Rules, Rule{IIf: p.FabricIf, Verdict: "jump " + egressChain(p)})
	}
	for _, p := range vpc.Ports {
		fwd.Rules = append(fwd.Rules, Rule{OIf: p.FabricIf, Verdict: "jump " + ingressChain(p)})
	}
	fwd.Rules = append(fwd.Rules, Rule{Counter: true, Verdict: Drop, Comment: "unknown-port"})
	rs.Chains = append(rs.Chains, fwd)
	for _, p := range vpc.Ports {
		rs.Sets = append(rs.Sets, Set{Name: portSet(p), Addrs: p.IPs})
		rs.Chains = append(rs.Chains, portChain(byID, p, true), portChain(byID, p, false))
	}
	return rs
}

func portChain(byID map[string]*topo.Group, p *topo.Port, egress bool) Chain {
	id := p.ENI.ID
	c := Chain{Name: ingressChain(p)}
	dir, verdict := Ingress, Accept
	if egress {
		c.Name, dir, verdict = egressChain(p), Egress, Return
		// EC2's source/destination check: an ENI sends only from its own
		// addresses (a branch pod cannot spoof another pod's IP).
		if p.ENI.SourceDestCheck {
			c.Rules = append(c.Rules, Rule{SAddr: Addr{Set: portSet(p), Not: true}, Counter: true, Verdict: Drop,
				Comment: strings.Join([]string{id, dir, "", "source-check"}, sep)})
		}
	}
	for _, gid := range p.ENI.Groups {
		g := byID[gid]
		if g == nil {
			continue
		}
		for _, sr := range g.Rules {
			if sr.Egress != egress {
				continue
			}
			r, ok := match(sr, egress)
			if !ok {
				continue
			}
			r.Counter, r.Verdict = true, verdict
			r.Comment = strings.Join([]string{id, dir, g.ID, sr.ID}, sep)
			c.Rules = append(c.Rules, r)
		}
	}
	c.Rules = append(c.Rules, Rule{Counter: true, Verdict: Drop, Comment: strings.Join([]string{id, dir, "", "default-deny"}, sep)})
	return c
}

// match translates one security group rule; ok is false for a rule the
// data path cannot express (it then allows nothing, which is safe).
func match(sr state.Rule, egress bool) (Rule, bool) {
	r := Rule{ICMPType: -1, ICMPCode: -1}
	peer := Addr{Set: ""}
	switch {
	case sr.GroupID != "":
		peer.Set = groupSet(sr.GroupID)
	case sr.CIDR != "":
		pfx, err := netip.ParsePrefix(sr.CIDR)
		if err != nil || !pfx.Addr().Is4() {
			return r, false
		}
		if pfx.Bits() > 0 {
			peer.Prefix = pfx.Masked()
		}
	default:
		return r, false
	}
	if egress {
		r.DAddr = peer
	} else {
		r.SAddr = peer
	}
	proto, ok := protocol(sr.Protocol)
	if !ok {
		return r, false
	}
	r.Proto = proto
	switch proto {
	case protoTCP, protoUDP:
		allPorts := sr.FromPort == 0 && sr.ToPort == 65535 // the same as no port match
		if sr.FromPort >= 0 && sr.ToPort >= sr.FromPort && !allPorts {
			// Package state keeps TCP and UDP ports in 0..65535.
			r.Ports = &[2]uint16{uint16(sr.FromPort), uint16(sr.ToPort)} //nolint:gosec // 0..65535: see above
		}
	case protoICMP:
		r.ICMPType, r.ICMPCode = int(sr.FromPort), int(sr.ToPort)
		if r.ICMPType < 0 {
			r.ICMPCode = -1 // EC2: a code without a type means all of ICMP
		}
	}
	return r, true
}

// protocol maps EC2's IpProtocol ("-1", names or numbers) to a number, 0
// meaning all.
func protocol(p string) (uint8, bool) {
	switch strings.ToLower(p) {
	case "-1", "all":
		return 0, true
	case "tcp":
		return protoTCP, true
	case "udp":
		return protoUDP, true
	case "icmp":
		return protoICMP, true
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 {
		return 0, false
	}
	return uint8(n), n != 0
}

func groupSet(id string) string        { return "sg-" + strings.TrimPrefix(id, "sg-") }
func portSet(p *topo.Port) string      { return "ips-" + p.ENI.ID }
func egressChain(p *topo.Port) string  { return "out-" + p.ENI.ID }
func ingressChain(p *topo.Port) string { return "in-" + p.ENI.ID }
