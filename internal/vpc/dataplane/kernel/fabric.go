package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/resolver"
)

const portVXLAN = topo.VXLANPort

// trunkNextHop is the trunk namespace's next hop into the fabric.
var trunkNextHop = netip.MustParseAddr("169.254.255.1")

// Names of the links inside a trunk's underlay namespace.
const (
	trunkDown = "trunk" // towards the instance's trunk eth<N>
	trunkUp   = "up"    // towards the fabric
)

// ensureFabric creates the VPC's router namespace: forwarding on, proxy
// ARP on (it answers for every address, so even same-subnet traffic is
// routed through it and filtered), the subnet gateways on lo, and the
// VPC CIDR unreachable except for the /32 of each wired ENI; the VPC
// resolver's address on lo too.
func (d *Dataplane) ensureFabric(s *session, vpc *topo.VPC) error {
	fresh := !namespace.Exists(vpc.Namespace)
	if err := namespace.Create(vpc.Namespace); err != nil {
		return err
	}
	if fresh {
		if err := namespace.Sysctl(vpc.Namespace,
			"net.ipv4.ip_forward", "1", "net.ipv4.conf.all.rp_filter", "0", "net.ipv4.conf.default.rp_filter", "0",
			"net.ipv4.conf.all.proxy_arp", "1", "net.ipv6.conf.all.disable_ipv6", "1", "net.ipv6.conf.default.disable_ipv6", "1",
		); err != nil {
			return err
		}
	}
	h, err := s.h(vpc.Namespace)
	if err != nil {
		return err
	}
	lo, err := linkByName(h, "lo")
	if err != nil || lo == nil {
		return fmt.Errorf("finding lo: %w", err)
	}
	if err := h.LinkSetUp(lo); err != nil {
		return fmt.Errorf("setting lo up: %w", err)
	}
	addrs := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}
	for _, g := range vpc.Gateways {
		addrs = append(addrs, host(g))
	}
	// The VPC's resolver (vpcResolvers) listens here, and the API at the interface endpoint's
	// address (imdsServers.syncFabrics): a VPC address, which every ENI reaches through the
	// fabric, branch ENIs too (169.254.169.254 here would be the fabric's ARP source towards
	// instances that hold that address themselves).
	addrs = append(addrs, host(resolver.Address(vpc.CIDR)), host(resolver.EndpointAddress(vpc.CIDR)))
	if err := syncAddrs(h, lo, addrs); err != nil {
		return err
	}
	// Instance metadata for pods on branch ENIs (imdsServers.branchHandlers) listens on
	// 169.254.169.254 here, made local by a route of the local table rather than an address,
	// which could become the fabric's ARP source. Instances do send ARP requests from it (the
	// address of their lo, for the address-less sub-interfaces of their trunk), and with the
	// address local here the fabric would drop them as martians unless it accepts local
	// sources. Set on every Apply, before the route: a fabric made by an older podsg-vpc has
	// not got it, and without it every branch ENI would lose its gateway.
	if err := namespace.Sysctl(vpc.Namespace, "net.ipv4.conf.all.accept_local", "1"); err != nil {
		return err
	}
	imdsRoute := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: ipNet(host(IMDSAddr)), Type: unix.RTN_LOCAL,
		Table: unix.RT_TABLE_LOCAL, Scope: netlink.SCOPE_HOST, Protocol: topo.RouteProtocol}
	if err := h.RouteReplace(imdsRoute); err != nil {
		return fmt.Errorf("routing %s locally: %w", IMDSAddr, err)
	}
	r := &netlink.Route{Dst: ipNet(vpc.CIDR), Type: unix.RTN_UNREACHABLE, Protocol: topo.RouteProtocol}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("routing %s unreachable: %w", vpc.CIDR, err)
	}
	return nil
}

// ensurePort wires one ENI and points the fabric at it.
func (d *Dataplane) ensurePort(s *session, vpc *topo.VPC, p *topo.Port) error {
	fabricMAC := derivedMAC("fabric/" + p.ENI.ID)
	var created bool
	var err error
	neighMAC := p.MAC // what the fabric sends the ENI's addresses to
	switch p.Kind {
	case topo.KindInstance, topo.KindRDS, topo.KindHost:
		if p.Kind == topo.KindRDS {
			if err := d.ensureGuestNS(s, p.Namespace); err != nil {
				return err
			}
		}
		created, err = s.ensureVeth(end{p.Namespace, p.IfName, p.MAC}, end{vpc.Namespace, p.FabricIf, fabricMAC}, topo.ENIMTU)
		if err == nil {
			err = d.configureENI(s, p)
		}
	case topo.KindTrunk:
		neighMAC = derivedMAC("trunk-up/" + p.ENI.ID)
		created, err = d.ensureTrunk(s, vpc, p, fabricMAC, neighMAC)
	case topo.KindBranch:
		created, err = s.ensureVXLAN(vxlanSpec{
			underNS: p.TrunkNS, fabricNS: vpc.Namespace, name: p.FabricIf, vni: p.VlanID,
			local: p.Trunk.Gateway, remote: p.Trunk.IPs[0], parent: trunkDown, mtu: topo.BranchMTU,
		})
	}
	if err != nil {
		return err
	}
	if created {
		// Proxy ARP answers at once instead of after a random delay up to 0.8 s.
		if err := namespace.Sysctl(vpc.Namespace, "net.ipv4.neigh."+p.FabricIf+".proxy_delay", "0"); err != nil {
			return err
		}
	}
	h, err := s.h(vpc.Namespace)
	if err != nil {
		return err
	}
	l, err := linkByName(h, p.FabricIf)
	if err != nil || l == nil {
		return fmt.Errorf("finding fabric link %s: %w", p.FabricIf, err)
	}
	neigh := map[netip.Addr]net.HardwareAddr{}
	for _, a := range p.IPs {
		neigh[a] = neighMAC
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipNet(host(a)), Scope: netlink.SCOPE_LINK, Protocol: topo.RouteProtocol}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("routing %s to %s: %w", a, p.FabricIf, err)
		}
	}
	return syncNeigh(h, p.FabricIf, neigh)
}

// ensureTrunk wires a trunk ENI: eth<N> in the instance is a veth into the
// trunk's underlay namespace, which routes the trunk's own traffic on into
// the fabric and terminates the branches' VXLAN (its address there is the
// trunk subnet's gateway, so the instance reaches it on-link).
func (d *Dataplane) ensureTrunk(s *session, vpc *topo.VPC, p *topo.Port, fabricMAC, upMAC net.HardwareAddr) (bool, error) {
	if err := ensureTrunkNS(p.TrunkNS); err != nil {
		return false, err
	}
	downMAC := derivedMAC("trunk-down/" + p.ENI.ID)
	c1, err := s.ensureVeth(end{p.Namespace, p.IfName, p.MAC}, end{p.TrunkNS, trunkDown, downMAC}, topo.TrunkMTU)
	if err != nil {
		return false, err
	}
	created, err := s.ensureVeth(end{p.TrunkNS, trunkUp, upMAC}, end{vpc.Namespace, p.FabricIf, fabricMAC}, topo.ENIMTU)
	if err != nil {
		return false, err
	}
	if c1 {
		if err := namespace.Sysctl(p.TrunkNS, "net.ipv4.neigh."+trunkDown+".proxy_delay", "0"); err != nil {
			return false, err
		}
	}
	if err := d.configureENI(s, p); err != nil {
		return false, err
	}
	if err := s.routeTrunkNS(p, fabricMAC); err != nil {
		return false, err
	}
	return created || c1, nil
}

// ensureTrunkNS creates a trunk's underlay namespace and, when it is new, makes it a router
// that answers ARP for the addresses it routes.
func ensureTrunkNS(ns string) error {
	fresh := !namespace.Exists(ns)
	if err := namespace.Create(ns); err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	return namespace.Sysctl(ns, "net.ipv4.ip_forward", "1", "net.ipv4.conf.all.rp_filter", "0",
		"net.ipv4.conf.default.rp_filter", "0", "net.ipv4.conf.all.proxy_arp", "1", "net.ipv6.conf.all.disable_ipv6", "1")
}

// routeTrunkNS routes in the trunk's underlay namespace: the trunk's own addresses down to
// the instance, everything else up to the fabric.
func (s *session) routeTrunkNS(p *topo.Port, fabricMAC net.HardwareAddr) error {
	h, err := s.h(p.TrunkNS)
	if err != nil {
		return err
	}
	down, err := linkByName(h, trunkDown)
	if err != nil {
		return err
	}
	if err := syncAddrs(h, down, []netip.Prefix{host(p.Gateway)}); err != nil {
		return err
	}
	neigh := map[netip.Addr]net.HardwareAddr{}
	for _, a := range p.IPs {
		neigh[a] = p.MAC
		if err := h.RouteReplace(&netlink.Route{LinkIndex: down.Attrs().Index, Dst: ipNet(host(a)), Scope: netlink.SCOPE_LINK}); err != nil {
			return fmt.Errorf("routing trunk address %s: %w", a, err)
		}
	}
	if err := syncNeigh(h, trunkDown, neigh); err != nil {
		return err
	}
	up, err := linkByName(h, trunkUp)
	if err != nil {
		return err
	}
	// The gateway address is local here (the VXLAN end), so the default
	// route uses a link-local next hop pinned to the fabric's MAC.
	def := &netlink.Route{LinkIndex: up.Attrs().Index, Gw: net.IP(trunkNextHop.AsSlice()), Flags: int(netlink.FLAG_ONLINK)}
	if err := h.RouteReplace(def); err != nil {
		return fmt.Errorf("routing trunk namespace to the fabric: %w", err)
	}
	return syncNeigh(h, trunkUp, map[netip.Addr]net.HardwareAddr{trunkNextHop: fabricMAC})
}

// pruneFabric removes fabric links and routes of ENIs no longer wired.
func (d *Dataplane) pruneFabric(s *session, vpc *topo.VPC) error {
	h, err := s.h(vpc.Namespace)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	routes := map[netip.Prefix]bool{vpc.CIDR: true}
	for _, p := range vpc.Ports {
		want[p.FabricIf] = true
		for _, a := range p.IPs {
			routes[host(a)] = true
		}
	}
	if err := pruneFabricLinks(h, want); err != nil {
		return err
	}
	return pruneFabricRoutes(h, routes)
}

// pruneFabricLinks deletes the fabric links (topo.FabricIf names) not in want.
func pruneFabricLinks(h *netlink.Handle, want map[string]bool) error {
	links, err := h.LinkList()
	if err != nil {
		return fmt.Errorf("listing fabric links: %w", err)
	}
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, "f") && len(n) == 11 && !want[n] {
			if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("deleting fabric link %s: %w", n, err)
			}
		}
	}
	return nil
}

// pruneFabricRoutes deletes the fabric's routes (ours by protocol) to destinations not in routes.
func pruneFabricRoutes(h *netlink.Handle, routes map[netip.Prefix]bool) error {
	rs, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: topo.RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("listing fabric routes: %w", err)
	}
	for _, r := range rs {
		if r.Dst != nil && !routes[toPrefix(r.Dst)] {
			if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("deleting fabric route %s: %w", r.Dst, err)
			}
		}
	}
	return nil
}
