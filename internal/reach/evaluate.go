package reach

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/cloud"
)

// IP protocol numbers, which rules may use instead of names.
const (
	protoAll  = 0
	protoICMP = 1
	protoTCP  = 6
	protoUDP  = 17
)

// Evaluate decides whether in.Src may open flow f to in.Dst. Every rule of every group of the
// source ENI is tried for egress (peer: the destination) and of the destination ENI for
// ingress (peer: the source); the flow passes when both sides have a rule that allows it.
func Evaluate(in Input, f Flow) Verdict {
	v := Verdict{Flow: f, Src: in.Src, Dst: in.Dst, Groups: in.Groups}
	v.Egress = side(in.Groups, in.Src.ENI, true, in.Dst, f)
	v.Ingress = side(in.Groups, in.Dst.ENI, false, in.Src, f)
	v.Local = local(in.Src, in.Dst)
	v.Allowed = v.Local != "" || v.Egress.Allowed() && v.Ingress.Allowed()
	return v
}

// local says why a flow stays inside one instance, where no security group sees it: the two
// addresses are on one ENI, or on ENIs of one instance that are not branches (a branch pod's
// traffic always leaves through its branch, even to its own node).
func local(src, dst Endpoint) string {
	switch {
	case src.ENI.ID == dst.ENI.ID:
		return fmt.Sprintf("%s and %s are both addresses of %s: the traffic never leaves it", src.IP, dst.IP, src.ENI.ID)
	case src.ENI.InstanceID != "" && src.ENI.InstanceID == dst.ENI.InstanceID &&
		src.ENI.Type != cloud.InterfaceTypeBranch && dst.ENI.Type != cloud.InterfaceTypeBranch:
		return fmt.Sprintf("%s and %s are both on instance %s, which delivers the traffic itself", src.ENI.ID, dst.ENI.ID, src.ENI.InstanceID)
	}
	return ""
}

func side(groups map[string]Group, eni cloud.NetworkInterface, egress bool, peer Endpoint, f Flow) Side {
	s := Side{ENI: eni}
	for _, id := range eni.SecurityGroups {
		g, ok := groups[id]
		if !ok {
			g = Group{ID: id}
		}
		s.Groups = append(s.Groups, g)
		for _, r := range g.Rules {
			if r.Egress != egress {
				continue
			}
			m := Match{Group: Group{ID: g.ID, Name: g.Name}, Rule: r}
			switch check(r, f, peer) {
			case allows:
				s.Allowing = append(s.Allowing, m)
			case unknown:
				s.Unknown = append(s.Unknown, m)
			case noMatch:
			}
		}
	}
	return s
}

type outcome int

const (
	noMatch outcome = iota
	allows
	unknown // the protocol and ports match, the peer cannot be checked
)

// check matches one rule against the flow and the peer, as the local VPC's firewall renders
// it (firewall.match): a rule the data path cannot express allows nothing.
func check(r cloud.SecurityGroupRule, f Flow, peer Endpoint) outcome {
	if !protocolMatches(r, f) {
		return noMatch
	}
	switch {
	case r.ReferencedGroupID != "":
		// The rule matches the private addresses of every ENI carrying the group; addresses
		// are unique in a VPC, so the peer's is one exactly when the peer's ENI carries it.
		if slices.Contains(peer.ENI.SecurityGroups, r.ReferencedGroupID) {
			return allows
		}
	case r.CIDR != "":
		pfx, err := netip.ParsePrefix(r.CIDR)
		if err == nil && pfx.Addr().Is4() && pfx.Masked().Contains(peer.IP) {
			return allows
		}
	case r.PrefixListID != "":
		return unknown
	}
	// An IPv6 CIDR never matches an IPv4 flow.
	return noMatch
}

func protocolMatches(r cloud.SecurityGroupRule, f Flow) bool {
	proto, ok := protocolNumber(r.Protocol)
	switch {
	case !ok:
		return false
	case proto == protoAll:
		return true
	case proto != flowProtocol(f):
		return false
	}
	switch proto {
	case protoTCP, protoUDP:
		// A range EC2 would not accept, or all of 0..65535, does not restrict ports.
		if r.FromPort >= 0 && r.ToPort >= r.FromPort {
			return int(r.FromPort) <= f.Port && f.Port <= int(r.ToPort)
		}
	case protoICMP:
		// FromPort is the ICMP type and ToPort the code; -1 is any, and a code without a
		// type means all of ICMP.
		if r.FromPort < 0 {
			return true
		}
		return int(r.FromPort) == f.ICMPType && (r.ToPort < 0 || int(r.ToPort) == f.ICMPCode)
	}
	return true
}

// protocolNumber maps a rule's protocol to its number, protoAll for all; ok is false for a
// protocol that matches nothing.
func protocolNumber(p string) (int, bool) {
	switch strings.ToLower(p) {
	case cloud.ProtocolAll, "all":
		return protoAll, true
	case cloud.ProtocolTCP:
		return protoTCP, true
	case cloud.ProtocolUDP:
		return protoUDP, true
	case cloud.ProtocolICMP:
		return protoICMP, true
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 255 {
		return 0, false
	}
	return n, true
}

func flowProtocol(f Flow) int {
	switch f.Protocol {
	case cloud.ProtocolTCP:
		return protoTCP
	case cloud.ProtocolUDP:
		return protoUDP
	case cloud.ProtocolICMP:
		return protoICMP
	}
	return -1
}
