package podnet

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podstate"
)

// Sub-interface drivers.
const (
	// DriverVLAN makes an 802.1Q device on the trunk ENI: what AWS's Nitro card expects.
	DriverVLAN = "vlan"
	// DriverVXLAN makes a vxlan device with VNI = VLAN id over the trunk link: the local VPC's
	// stand-in, because its kernel has no 802.1Q (docs/local-vpc.md).
	DriverVXLAN = "vxlan"
)

// SubInterfaceDriver builds the link that carries one branch ENI's traffic on the trunk.
type SubInterfaceDriver interface {
	Name() string
	NewLink(trunk netlink.Link, rec *podstate.Record, mac net.HardwareAddr) (netlink.Link, error)
}

// VLAN is the AWS driver.
type VLAN struct{}

// Name implements SubInterfaceDriver.
func (VLAN) Name() string { return DriverVLAN }

// NewLink implements SubInterfaceDriver.
func (VLAN) NewLink(trunk netlink.Link, rec *podstate.Record, mac net.HardwareAddr) (netlink.Link, error) {
	return &netlink.Vlan{
		LinkAttrs: netlink.LinkAttrs{Name: rec.SubInterface, ParentIndex: trunk.Attrs().Index, HardwareAddr: mac},
		VlanId:    rec.VLAN,
	}, nil
}

// VXLAN is the local VPC driver (docs/local-vpc.md): a vxlan device with VNI = VLAN id,
// originating from the trunk's own address and terminated by the VPC fabric at the trunk
// subnet's gateway (base address + 1), as EC2's router answers there.
type VXLAN struct {
	// Port is the UDP port; 0 means 4789, the local VPC's.
	Port int
}

// Name implements SubInterfaceDriver.
func (VXLAN) Name() string { return DriverVXLAN }

// NewLink implements SubInterfaceDriver.
func (d VXLAN) NewLink(trunk netlink.Link, rec *podstate.Record, mac net.HardwareAddr) (netlink.Link, error) {
	local, err := firstIPv4(trunk)
	if err != nil {
		return nil, err
	}
	port := d.Port
	if port == 0 {
		port = 4789
	}
	remote := rec.TrunkGateway
	if !remote.IsValid() {
		remote = rec.Gateway
	}
	return &netlink.Vxlan{
		LinkAttrs:    netlink.LinkAttrs{Name: rec.SubInterface, HardwareAddr: mac, MTU: trunk.Attrs().MTU - vxlanOverhead},
		VxlanId:      rec.VLAN,
		VtepDevIndex: trunk.Attrs().Index,
		SrcAddr:      local,
		Group:        remote.AsSlice(),
		Port:         port,
		Learning:     false,
	}, nil
}

// vxlanOverhead is what vxlan adds to each frame (outer IPv4 20 + UDP 8 + vxlan 8 + inner
// Ethernet 14); the sub-interface's MTU leaves room for it so that nothing fragments.
const vxlanOverhead = 50

func firstIPv4(l netlink.Link) (net.IP, error) {
	addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		return nil, fmt.Errorf("listing addresses of trunk %s: %w", l.Attrs().Name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("trunk %s has no IPv4 address to originate vxlan from", l.Attrs().Name)
	}
	return addrs[0].IP, nil
}
