package podnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podstate"
)

// Names is what a DEL knows of a pod whose record cannot be read: the interface name the
// runtime passes, and the names the node may have given the pod's host veth (HostVethName of
// the pod's namespace and name with each prefix the agent uses). DelByNames finds the rest.
type Names struct {
	IfName    string
	HostVeths []string
}

// Spare is what other pods' records hold. DelByNames leaves it alone, so that a name or an
// address that now belongs to another pod is never torn down with the lost one.
type Spare struct {
	Links map[string]bool
	IPs   map[netip.Addr]bool
}

// SpareOf returns the links and addresses recs hold.
func SpareOf(recs []*podstate.Record) Spare {
	s := Spare{Links: map[string]bool{}, IPs: map[netip.Addr]bool{}}
	for _, r := range recs {
		s.Links[r.HostVeth], s.IPs[r.IP] = true, true
		if r.SubInterface != "" {
			s.Links[r.SubInterface] = true
		}
	}
	return s
}

// Found is what DelByNames found of a pod's network, and removed.
type Found struct {
	HostVeths     []string
	IPs           []netip.Addr
	SubInterfaces []string
	Rules         int
}

func (f Found) String() string {
	return fmt.Sprintf("host veths %v, pod addresses %v, sub-interfaces %v, %d rules", f.HostVeths, f.IPs, f.SubInterfaces, f.Rules)
}

// DelByNames removes what it can find of a pod's network when the pod's record is unusable.
// Before deleting anything it learns, from the names alone: the pod's addresses (on its
// interface in netnsPath, and the host routes through its host veth), the pod's rules (iif its
// host veth; to and from its addresses, at the priorities Add uses), the tables those rules
// point to, and a branch pod's sub-interface (a vlan.eth.<n> link routing in one of those
// tables) with its iif rule. Then it deletes the interfaces, whose routes go with them, and
// the rules. It is idempotent, and like Del needs neither the agent nor the pod's namespace.
//
// What it cannot learn stays: with the namespace and the host veth both gone, nothing names a
// pod's address, so its address rules and a standard-mode branch pod's sub-interface remain.
// They are inert (a rule for an address no interface has matches no packet) and are replaced
// when the address or VLAN is used again (Add deletes a sub-interface of the same name first).
func DelByNames(netnsPath string, n Names, spare Spare) (Found, error) {
	f, rules, err := find(netnsPath, n, spare)
	errs := []error{err}
	if n.IfName != "" {
		errs = append(errs, inPod(netnsPath, func() error { return deleteLinkByName(n.IfName) }))
	}
	for _, name := range append(slices.Clone(f.HostVeths), f.SubInterfaces...) {
		errs = append(errs, deleteLinkByName(name))
	}
	for _, r := range rules {
		errs = append(errs, deleteRule(r))
	}
	return f, errors.Join(errs...)
}

// find is DelByNames' look before it deletes: deleting a link takes its routes, which name the
// pod's addresses and tables, with it.
func find(netnsPath string, n Names, spare Spare) (Found, []*netlink.Rule, error) {
	var f Found
	var errs []error
	ips := map[netip.Addr]bool{}
	if n.IfName != "" {
		errs = append(errs, inPod(netnsPath, func() error { return podAddrs(n.IfName, ips) }))
	}
	veths := slices.DeleteFunc(slices.Clone(n.HostVeths), func(name string) bool { return name == "" || spare.Links[name] })
	for _, name := range veths {
		found, err := hostVethAddrs(name, ips)
		if found {
			f.HostVeths = append(f.HostVeths, name)
		}
		errs = append(errs, err)
	}
	for ip := range ips {
		if !spare.IPs[ip] {
			f.IPs = append(f.IPs, ip)
		}
	}
	slices.SortFunc(f.IPs, netip.Addr.Compare)
	all, err := netlink.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return f, nil, errors.Join(append(errs, fmt.Errorf("listing rules: %w", err))...)
	}
	rules, tables := podRules(all, veths, f.IPs)
	f.SubInterfaces, err = subInterfaces(tables, spare)
	rules = append(rules, subInterfaceRules(all, tables, spare)...)
	f.Rules = len(rules)
	return f, rules, errors.Join(append(errs, err)...)
}

// inPod runs fn in the pod's namespace; a namespace that is not there (no path, or gone) is
// not an error.
func inPod(netnsPath string, fn func() error) error {
	if netnsPath == "" {
		return nil
	}
	err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error { return fn() })
	if isNSGone(err) {
		return nil
	}
	return err
}

// podAddrs adds the IPv4 addresses of the pod's interface (in the current namespace) to ips.
func podAddrs(ifName string, ips map[netip.Addr]bool) error {
	link, err := netlink.LinkByName(ifName)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return fmt.Errorf("finding pod interface %s: %w", ifName, err)
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing addresses of pod interface %s: %w", ifName, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
			ips[ip] = true
		}
	}
	return nil
}

// hostVethAddrs reports whether the veth named name exists and adds the addresses it has host
// routes to, in any table, to ips. A link of that name that is not a veth is not a pod's.
func hostVethAddrs(name string, ips map[netip.Addr]bool) (bool, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return false, nil
		}
		return false, fmt.Errorf("finding host veth %s: %w", name, err)
	}
	if link.Type() != "veth" {
		return false, nil
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{LinkIndex: link.Attrs().Index},
		netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF) // table 0: every table
	if err != nil {
		return true, fmt.Errorf("listing routes through %s: %w", name, err)
	}
	for _, r := range routes {
		if ip, ok := hostAddr(r.Dst); ok {
			ips[ip] = true
		}
	}
	return true, nil
}

// podRules picks the rules Add makes for a pod with these host veths and addresses, and the
// tables they send to (the main table aside).
func podRules(all []netlink.Rule, veths []string, ips []netip.Addr) ([]*netlink.Rule, map[int]bool) {
	var mine []*netlink.Rule
	tables := map[int]bool{}
	for _, r := range all {
		src, srcOK := hostAddr(r.Src)
		dst, dstOK := hostAddr(r.Dst)
		switch {
		case r.Priority == PrioritySubInterface && slices.Contains(veths, r.IifName):
		case r.Priority == PriorityFromPod && srcOK && slices.Contains(ips, src):
		case r.Priority == PriorityToPod && r.Table == mainTable && dstOK && slices.Contains(ips, dst):
		default:
			continue
		}
		mine = append(mine, ruleKey(r))
		if r.Table != mainTable {
			tables[r.Table] = true
		}
	}
	return mine, tables
}

// subInterfaces returns the sub-interfaces with routes in tables: a branch pod's table routes
// through its sub-interface, a regular pod's (an ENI's table) through the ENI, which is never
// named like a sub-interface.
func subInterfaces(tables map[int]bool, spare Spare) ([]string, error) {
	var subs []string
	var errs []error
	for table := range tables {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing routes of table %d: %w", table, err))
			continue
		}
		for _, r := range routes {
			link, err := netlink.LinkByIndex(r.LinkIndex)
			if err != nil {
				continue // gone meanwhile
			}
			name := link.Attrs().Name
			if isSubInterfaceName(name) && !spare.Links[name] && (link.Type() == "vlan" || link.Type() == "vxlan") && !slices.Contains(subs, name) {
				subs = append(subs, name)
			}
		}
	}
	slices.Sort(subs)
	return subs, errors.Join(errs...)
}

// subInterfaceRules picks the strict-mode rules "iif <sub-interface> lookup <pod table>" of the
// pod's tables, also when the sub-interface itself is gone.
func subInterfaceRules(all []netlink.Rule, tables map[int]bool, spare Spare) []*netlink.Rule {
	var mine []*netlink.Rule
	for _, r := range all {
		if r.Priority == PrioritySubInterface && tables[r.Table] && isSubInterfaceName(r.IifName) && !spare.Links[r.IifName] {
			mine = append(mine, ruleKey(r))
		}
	}
	return mine
}

// hostAddr returns the address of a /32 prefix.
func hostAddr(n *net.IPNet) (netip.Addr, bool) {
	if n == nil {
		return netip.Addr{}, false
	}
	if ones, bits := n.Mask.Size(); ones != 32 || bits != 32 {
		return netip.Addr{}, false
	}
	return netip.AddrFromSlice(n.IP.To4())
}

// ruleKey is the rule to delete for a listed one: the fields Add sets, nothing the kernel
// filled in.
func ruleKey(r netlink.Rule) *netlink.Rule {
	k := netlink.NewRule()
	k.Priority, k.Table, k.IifName, k.Src, k.Dst = r.Priority, r.Table, r.IifName, r.Src, r.Dst
	return k
}
