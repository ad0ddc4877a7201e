package agent

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// netlinkENIs sets up secondary ENIs in the node's network namespace, as AWS's VPC CNI does:
// the interface up with its primary address, and a route table of its own whose default route
// leaves through it. The per-pod "from <pod IP>" rules pointing at that table are the CNI
// plugin's (internal/podnet).
type netlinkENIs struct{}

func (netlinkENIs) Setup(ctx context.Context, l ENILink) (string, error) {
	name, err := waitForLinkWithMAC(ctx, l.MAC)
	if err != nil {
		return "", err
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		return "", fmt.Errorf("finding %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return "", fmt.Errorf("bringing up %s: %w", name, err)
	}
	// A /32, so that the subnet's route stays on the primary ENI: which ENI a packet leaves
	// through is decided by the source rules, not by the main table.
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: l.PrimaryIP.AsSlice(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return "", fmt.Errorf("adding %s to %s: %w", addr.IPNet, name, err)
	}
	gw := net.IP(l.Subnet.Masked().Addr().Next().AsSlice())
	idx := link.Attrs().Index
	for _, r := range []*netlink.Route{
		{LinkIndex: idx, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK, Table: l.Table},
		{LinkIndex: idx, Gw: gw, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Table: l.Table},
	} {
		if err := netlink.RouteReplace(r); err != nil {
			return "", fmt.Errorf("adding route %s to table %d: %w", r, l.Table, err)
		}
	}
	return name, nil
}
