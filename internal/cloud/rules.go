package cloud

// Protocols of security group rules, as EC2 spells them; any other value is an IP protocol
// number.
const (
	ProtocolAll  = "-1"
	ProtocolTCP  = "tcp"
	ProtocolUDP  = "udp"
	ProtocolICMP = "icmp"
)

// SecurityGroupRule is one rule of a security group, as DescribeSecurityGroupRules returns
// it: one peer per rule, unlike IpPermissions, and an id (sgr-…) that EC2 and the local VPC's
// flow counters both name.
type SecurityGroupRule struct {
	ID      string
	GroupID string
	Egress  bool
	// Protocol is ProtocolAll, ProtocolTCP, ProtocolUDP, ProtocolICMP or a protocol number.
	Protocol string
	// FromPort/ToPort are the TCP/UDP port range, or the ICMP type and code; -1 means any
	// (and is what EC2 reports for protocols without ports).
	FromPort, ToPort int32
	// Exactly one peer is set: the other end of the traffic the rule allows.
	CIDR              string // IPv4 CIDR
	CIDRv6            string
	PrefixListID      string
	ReferencedGroupID string // the private IPs of the ENIs that carry this group
	Description       string
}
