package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// IMDSAddr is the instance metadata address, on every instance's lo.
var IMDSAddr = netip.MustParseAddr("169.254.169.254")

// rulePriority is the "from <ENI address>" rule of secondary ENIs, the
// priority the VPC CNI and ec2-net-utils use.
const rulePriority = 32765

// ensureGuestNS creates an instance (or database) namespace.
func (d *Dataplane) ensureGuestNS(s *session, name string) error {
	fresh := !namespace.Exists(name)
	if err := namespace.Create(name); err != nil {
		return err
	}
	if fresh {
		// Loose reverse-path filtering, as the VPC CNI sets on EC2: branch
		// traffic arrives on sub-interfaces the main table does not route.
		if err := namespace.Sysctl(name, "net.ipv4.conf.all.rp_filter", "2", "net.ipv4.conf.default.rp_filter", "2",
			"net.ipv6.conf.all.disable_ipv6", "1", "net.ipv6.conf.default.disable_ipv6", "1"); err != nil {
			return err
		}
	}
	h, err := s.h(name)
	if err != nil {
		return err
	}
	lo, err := linkByName(h, "lo")
	if err != nil || lo == nil {
		return fmt.Errorf("finding lo in %s: %w", name, err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("setting lo up in %s: %w", name, err)
	}
	// The metadata address is local to the instance, as on EC2, but never the source the
	// instance picks for a route through a link without addresses of its own: a pod's
	// host-side veth. There the node's own address must be the source, as on EC2 (where
	// 169.254.169.254 is not an address of the instance at all): NetworkPolicy lets a pod's
	// node in by that address, and the kubelet's probes would otherwise come from
	// 169.254.169.254 and be dropped. Scope host keeps it out of source selection.
	return syncAddrs(h, lo, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), host(IMDSAddr)}, host(IMDSAddr))
}

// configureENI gives the ENI's own link its addresses and routes, as an
// EC2 instance's network scripts would: the primary ENI (and a database's
// only one) gets the subnet prefix and the default route; a secondary ENI
// gets /32 addresses and a table <index+1> used for traffic from them.
func (d *Dataplane) configureENI(s *session, p *topo.Port) error {
	h, err := s.h(p.Namespace)
	if err != nil {
		return err
	}
	l, err := linkByName(h, p.IfName)
	if err != nil || l == nil {
		return fmt.Errorf("finding %s: %w", p.IfName, err)
	}
	primary := p.Kind == topo.KindRDS || (p.Kind != topo.KindHost && p.DeviceIndex == 0)
	// Like EC2's DHCP, configure only the ENI's primary address: secondary addresses are
	// delivered to the ENI's MAC (the fabric knows them) and the instance decides what to do
	// with them — the CNI gives them to pods, which a host address would shadow.
	var addrs []netip.Prefix
	if len(p.IPs) > 0 {
		if primary {
			addrs = append(addrs, netip.PrefixFrom(p.IPs[0], p.Subnet.Bits()))
		} else {
			addrs = append(addrs, host(p.IPs[0]))
		}
	}
	if err := syncAddrs(h, l, addrs); err != nil {
		return err
	}
	if p.Kind == topo.KindHost || len(p.IPs) == 0 {
		return nil
	}
	gw := net.IP(p.Gateway.AsSlice())
	idx := l.Attrs().Index
	if primary {
		if err := h.RouteReplace(&netlink.Route{LinkIndex: idx, Gw: gw}); err != nil {
			return fmt.Errorf("adding default route via %s: %w", p.Gateway, err)
		}
		return nil
	}
	table := p.DeviceIndex + 1
	for _, r := range []*netlink.Route{
		{LinkIndex: idx, Dst: ipNet(host(p.Gateway)), Scope: netlink.SCOPE_LINK, Table: table},
		{LinkIndex: idx, Gw: gw, Table: table},
	} {
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("adding route to table %d: %w", table, err)
		}
	}
	return nil
}

// instanceRouting makes the "from <address>" rules of secondary ENIs
// exactly those of the attached non-trunk ENIs (the VPC CNI adds no such
// rule for a trunk).
func (d *Dataplane) instanceRouting(s *session, inst *topoInstance) error {
	h, err := s.h(inst.Namespace)
	if err != nil {
		return err
	}
	return syncSourceRules(h, sourceTables(inst))
}

// sourceTables maps the primary address of each of the instance's secondary non-trunk ENIs
// to the route table of its ENI (device index + 1). Only the primary address, the one the
// instance configures: secondary addresses belong to whatever the instance hands them to
// (pods), and their routing is its CNI's job — a rule here would hide a CNI that forgot it.
func sourceTables(inst *topoInstance) map[netip.Addr]int {
	want := map[netip.Addr]int{}
	for _, p := range inst.Ports {
		if p.DeviceIndex > 0 && p.Kind == topo.KindInstance && len(p.IPs) > 0 {
			want[p.IPs[0]] = p.DeviceIndex + 1
		}
	}
	return want
}

// syncSourceRules makes the "from <address> lookup <table>" rules at rulePriority exactly want.
func syncSourceRules(h *netlink.Handle, want map[netip.Addr]int) error {
	rules, err := h.RuleList(unix.AF_INET)
	if err != nil {
		return fmt.Errorf("listing rules: %w", err)
	}
	for _, r := range rules {
		if r.Priority != rulePriority || r.Src == nil {
			continue
		}
		a := toPrefix(r.Src).Addr()
		if t, ok := want[a]; ok && t == r.Table {
			delete(want, a)
			continue
		}
		if err := h.RuleDel(&r); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting rule from %s: %w", a, err)
		}
	}
	for a, t := range want {
		r := netlink.NewRule()
		r.Priority, r.Src, r.Table = rulePriority, ipNet(host(a)), t
		if err := h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding rule from %s: %w", a, err)
		}
	}
	return nil
}

type topoInstance = topo.Instance
