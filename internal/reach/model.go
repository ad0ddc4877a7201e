package reach

import (
	"fmt"
	"net/netip"

	"github.com/podsg/podsg/internal/cloud"
)

// Endpoint is one end of a flow: an address and the ENI that holds it.
type Endpoint struct {
	// Spec is how the user named it: an ENI id, an address or pod/NAMESPACE/NAME.
	Spec string
	// IP is the address the flow uses: the ENI's primary address when named by its id, the
	// pod's address for a pod.
	IP  netip.Addr
	ENI cloud.NetworkInterface
}

// Group is a security group with its rules.
type Group struct {
	ID, Name string
	Rules    []cloud.SecurityGroupRule
}

// Input is what Evaluate decides over: both ends and every group either ENI carries, plus the
// groups their rules reference (by id; those may lack rules and names).
type Input struct {
	Src, Dst Endpoint
	Groups   map[string]Group
}

// Flow is the first packet of a connection: what security groups look at.
type Flow struct {
	// Protocol is cloud.ProtocolTCP, ProtocolUDP or ProtocolICMP.
	Protocol string
	// Port is the TCP or UDP destination port.
	Port int
	// ICMPType and ICMPCode of an ICMP flow (8/0: echo request).
	ICMPType, ICMPCode int
}

// Validate reports a flow no packet could be.
func (f Flow) Validate() error {
	switch f.Protocol {
	case cloud.ProtocolTCP, cloud.ProtocolUDP:
		if f.Port < 0 || f.Port > 65535 {
			return fmt.Errorf("port %d is outside 0..65535", f.Port)
		}
	case cloud.ProtocolICMP:
		if f.ICMPType < 0 || f.ICMPType > 255 || f.ICMPCode < 0 || f.ICMPCode > 255 {
			return fmt.Errorf("ICMP type %d code %d: both must be in 0..255", f.ICMPType, f.ICMPCode)
		}
	default:
		return fmt.Errorf("protocol %q: want tcp, udp or icmp", f.Protocol)
	}
	return nil
}

// String renders the flow as "tcp 5432" or "icmp type 8 code 0".
func (f Flow) String() string {
	if f.Protocol == cloud.ProtocolICMP {
		return fmt.Sprintf("icmp type %d code %d", f.ICMPType, f.ICMPCode)
	}
	return fmt.Sprintf("%s %d", f.Protocol, f.Port)
}

// Verdict is Evaluate's answer.
type Verdict struct {
	Flow     Flow
	Src, Dst Endpoint
	// Allowed: both sides allow the flow, or it never meets security groups (Local).
	Allowed bool
	// Local, when not empty, says why the flow never leaves the instance, so that no security
	// group sees it; Egress and Ingress are then still filled in, for information.
	Local string
	// Egress is the source ENI's side, Ingress the destination ENI's.
	Egress, Ingress Side
	// Groups is Input.Groups, which names the groups rules reference.
	Groups map[string]Group
}

// Side is one ENI's half of the decision.
type Side struct {
	ENI cloud.NetworkInterface
	// Groups are the ENI's groups, in the ENI's order.
	Groups []Group
	// Allowing lists every rule that allows the flow; none means this side denies it.
	Allowing []Match
	// Unknown lists rules that match the flow's protocol and port but whose peer is a prefix
	// list, which reach does not expand: they may allow what Allowing does not.
	Unknown []Match
}

// Allowed reports whether some rule of this side allows the flow.
func (s Side) Allowed() bool { return len(s.Allowing) > 0 }

// Match is a rule and the group it belongs to.
type Match struct {
	Group Group // without its rules
	Rule  cloud.SecurityGroupRule
}
