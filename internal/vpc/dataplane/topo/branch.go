package topo

import (
	"net/netip"
)

// The branch ENI wiring contract. The local VPC has no 802.1Q, so a branch
// ENI's VLAN on the trunk is a VXLAN sub-interface whose VNI is the VLAN id.
// The agent/CNI creates the instance end (internal/podnet's vxlan driver, as
// it creates vlan.eth.<N> on EC2): from the trunk's primary IP to the trunk
// subnet's gateway; the fabric creates and terminates the other end per
// trunk association.
const (
	// VXLANPort is the UDP destination port of every branch sub-interface.
	VXLANPort = 4789
	// ENIMTU is the MTU of every ENI link, as on EC2 (jumbo frames).
	ENIMTU = 9001
	// VXLANOverhead is what the encapsulation adds (outer IPv4+UDP+VXLAN+Ethernet).
	VXLANOverhead = 50
	// TrunkMTU is the trunk link's MTU: big enough that a branch
	// sub-interface carries ENIMTU-sized packets unfragmented.
	TrunkMTU = ENIMTU + VXLANOverhead
	// BranchMTU is the branch sub-interface MTU.
	BranchMTU = ENIMTU
)

// Gateway is the VPC router address of a subnet: its base address + 1.
func Gateway(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }
