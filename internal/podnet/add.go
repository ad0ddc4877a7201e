package podnet

import (
	"errors"
	"fmt"
	"net"

	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ip"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podstate"
)

// Options tune Add.
type Options struct {
	// MTU of the pod's veth pair; 0 keeps the kernel's default.
	MTU int
	// Driver builds branch pods' trunk sub-interfaces.
	Driver SubInterfaceDriver
}

// Add builds the network rec describes, from the node's network namespace (the current one)
// into the pod's at netnsPath. On failure it removes everything it built and returns the
// first error, so a failed ADD leaks nothing.
func Add(netnsPath string, rec *podstate.Record, o Options) (_ *current.Result, err error) {
	if err := rec.Validate(); err != nil {
		return nil, err
	}
	if rec.Kind == podstate.KindBranch && (o.Driver == nil || rec.TrunkLink == "") {
		return nil, errors.New("branch pod without a sub-interface driver or trunk link")
	}
	podNS, err := ns.GetNS(netnsPath)
	if err != nil {
		return nil, fmt.Errorf("opening pod netns %s: %w", netnsPath, err)
	}
	defer func() { _ = podNS.Close() }()
	defer func() {
		if err != nil {
			if derr := Del(netnsPath, rec); derr != nil {
				err = fmt.Errorf("%w (and rolling back: %v)", err, derr) //nolint:errorlint // the first error is the one to act on
			}
		}
	}()

	hostIf, podIf, err := setupVeth(podNS, rec, o.MTU)
	if err != nil {
		return nil, err
	}
	if rec.Kind == podstate.KindBranch {
		err = setupBranch(rec, hostIf.Index, o.Driver)
	} else {
		err = setupRegular(rec, hostIf.Index)
	}
	if err != nil {
		return nil, err
	}
	return result(rec, hostIf, podIf, netnsPath), nil
}

const mainTable = 254 // RT_TABLE_MAIN

// setupVeth creates the veth pair inside the pod's namespace with its peer in the node's, and
// gives the pod its address and a default route via PodGatewayIP.
func setupVeth(podNS ns.NetNS, rec *podstate.Record, mtu int) (hostIf, podIf net.Interface, err error) {
	if err := deleteLinkByName(rec.HostVeth); err != nil { // left by an earlier, failed ADD
		return hostIf, podIf, err
	}
	hostNS, err := ns.GetCurrentNS()
	if err != nil {
		return hostIf, podIf, fmt.Errorf("opening the node netns: %w", err)
	}
	defer func() { _ = hostNS.Close() }()
	err = podNS.Do(func(ns.NetNS) error {
		h, c, err := ip.SetupVethWithName(rec.IfName, rec.HostVeth, mtu, "", hostNS)
		if err != nil {
			return fmt.Errorf("creating veth %s/%s: %w", rec.IfName, rec.HostVeth, err)
		}
		hostIf, podIf = h, c
		return configurePodSide(rec, c.Index, h.HardwareAddr)
	})
	if err != nil {
		return hostIf, podIf, err
	}
	link, err := netlink.LinkByName(rec.HostVeth)
	if err != nil {
		return hostIf, podIf, fmt.Errorf("finding host veth %s: %w", rec.HostVeth, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return hostIf, podIf, fmt.Errorf("bringing up %s: %w", rec.HostVeth, err)
	}
	return hostIf, podIf, nil
}

func configurePodSide(rec *podstate.Record, index int, hostMAC net.HardwareAddr) error {
	link, err := netlink.LinkByIndex(index)
	if err != nil {
		return fmt.Errorf("finding pod interface %s: %w", rec.IfName, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bringing up %s: %w", rec.IfName, err)
	}
	addr := &netlink.Addr{IPNet: hostPrefix(rec)}
	if err := netlink.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("adding %s to %s: %w", addr.IPNet, rec.IfName, err)
	}
	gw := net.ParseIP(PodGatewayIP).To4()
	routes := []*netlink.Route{
		{LinkIndex: index, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK},
		{LinkIndex: index, Gw: gw, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}},
	}
	for _, r := range routes {
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("adding pod route %s: %w", r, err)
		}
	}
	// The node never answers ARP for the link-local gateway; a permanent entry stands in.
	neigh := &netlink.Neigh{LinkIndex: index, IP: gw, HardwareAddr: hostMAC, State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4}
	if err := netlink.NeighAdd(neigh); err != nil {
		return fmt.Errorf("adding the gateway neighbour in the pod: %w", err)
	}
	return nil
}

// setupRegular routes a regular pod: its host route in the main table, and its rules.
func setupRegular(rec *podstate.Record, hostVethIndex int) error {
	if err := addRoute(hostRoute(rec, hostVethIndex, mainTable)); err != nil {
		return err
	}
	return addRules(rec)
}

func addRules(rec *podstate.Record) error {
	for _, r := range rules(rec) {
		if err := netlink.RuleAdd(r); err != nil {
			return fmt.Errorf("adding rule %s: %w", r, err)
		}
	}
	return nil
}

// setupBranch creates the trunk sub-interface and the pod's route table and rules.
func setupBranch(rec *podstate.Record, hostVethIndex int, d SubInterfaceDriver) error {
	trunk, err := netlink.LinkByName(rec.TrunkLink)
	if err != nil {
		return fmt.Errorf("finding trunk link %s: %w", rec.TrunkLink, err)
	}
	mac, err := net.ParseMAC(rec.BranchMAC)
	if err != nil {
		return fmt.Errorf("branch MAC %q: %w", rec.BranchMAC, err)
	}
	if err := deleteLinkByName(rec.SubInterface); err != nil { // the trunk may have changed
		return err
	}
	sub, err := d.NewLink(trunk, rec, mac)
	if err != nil {
		return fmt.Errorf("describing sub-interface %s: %w", rec.SubInterface, err)
	}
	if err := netlink.LinkAdd(sub); err != nil {
		return fmt.Errorf("creating %s sub-interface %s (VLAN %d) on %s: %w", d.Name(), rec.SubInterface, rec.VLAN, rec.TrunkLink, err)
	}
	if err := netlink.LinkSetUp(sub); err != nil {
		return fmt.Errorf("bringing up %s: %w", rec.SubInterface, err)
	}
	subIndex := sub.Attrs().Index
	gw := rec.Gateway.AsSlice()
	routes := []*netlink.Route{
		{LinkIndex: subIndex, Dst: &net.IPNet{IP: gw, Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK, Table: rec.RouteTable},
		{LinkIndex: subIndex, Gw: gw, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)}, Table: rec.RouteTable},
	}
	if rec.Mode == podstate.ModeStrict {
		routes = append(routes, hostRoute(rec, hostVethIndex, rec.RouteTable))
	} else {
		routes = append(routes, hostRoute(rec, hostVethIndex, mainTable))
	}
	for _, r := range routes {
		if err := addRoute(r); err != nil {
			return err
		}
	}
	return addRules(rec)
}

// rules returns the policy rules of a pod.
//   - Regular pod: traffic to it is looked up in the main table before any source rule, so
//     that same-node traffic from pods on other ENIs is delivered directly; traffic from it,
//     when its IP belongs to a secondary ENI, leaves through that ENI (EC2 drops packets
//     whose source address is not the sending ENI's). AWS's VPC CNI uses the same two rules.
//   - Branch pod: per enforcing mode, see below.
func rules(rec *podstate.Record) []*netlink.Rule {
	if rec.Kind == podstate.KindRegular {
		toPod := netlink.NewRule()
		toPod.Dst, toPod.Table, toPod.Priority = hostPrefix(rec), mainTable, PriorityToPod
		if rec.RouteTable == 0 {
			return []*netlink.Rule{toPod}
		}
		fromPod := netlink.NewRule()
		fromPod.Src, fromPod.Table, fromPod.Priority = hostPrefix(rec), rec.RouteTable, PriorityFromPod
		return []*netlink.Rule{toPod, fromPod}
	}
	if rec.Mode == podstate.ModeStrict {
		fromSub, fromPod := netlink.NewRule(), netlink.NewRule()
		fromSub.IifName, fromSub.Table, fromSub.Priority = rec.SubInterface, rec.RouteTable, PrioritySubInterface
		fromPod.IifName, fromPod.Table, fromPod.Priority = rec.HostVeth, rec.RouteTable, PrioritySubInterface
		return []*netlink.Rule{fromSub, fromPod}
	}
	toPod, fromPod := netlink.NewRule(), netlink.NewRule()
	toPod.Dst, toPod.Table, toPod.Priority = hostPrefix(rec), mainTable, PriorityToPod
	fromPod.Src, fromPod.Table, fromPod.Priority = hostPrefix(rec), rec.RouteTable, PriorityFromPod
	return []*netlink.Rule{toPod, fromPod}
}

func hostRoute(rec *podstate.Record, hostVethIndex, table int) *netlink.Route {
	return &netlink.Route{LinkIndex: hostVethIndex, Dst: hostPrefix(rec), Scope: netlink.SCOPE_LINK, Table: table}
}

func hostPrefix(rec *podstate.Record) *net.IPNet {
	return &net.IPNet{IP: rec.IP.AsSlice(), Mask: net.CIDRMask(32, 32)}
}

func addRoute(r *netlink.Route) error {
	if err := netlink.RouteAdd(r); err != nil {
		return fmt.Errorf("adding route %s: %w", r, err)
	}
	return nil
}

func result(rec *podstate.Record, hostIf, podIf net.Interface, netnsPath string) *current.Result {
	podIndex := 1
	return &current.Result{
		CNIVersion: current.ImplementedSpecVersion,
		Interfaces: []*current.Interface{
			{Name: hostIf.Name, Mac: hostIf.HardwareAddr.String()},
			{Name: podIf.Name, Mac: podIf.HardwareAddr.String(), Sandbox: netnsPath},
		},
		IPs: []*current.IPConfig{{Interface: &podIndex, Address: *hostPrefix(rec), Gateway: net.ParseIP(PodGatewayIP)}},
	}
}
