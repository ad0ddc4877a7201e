package podnet

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podstate"
)

// Check reports how the kernel differs from what rec describes (CNI CHECK): a missing device,
// address, route or rule. nil means no drift.
func Check(netnsPath string, rec *podstate.Record) error {
	var drift []string
	note := func(format string, args ...any) { drift = append(drift, fmt.Sprintf(format, args...)) }

	host, err := netlink.LinkByName(rec.HostVeth)
	if err != nil {
		note("host veth %s missing", rec.HostVeth)
	} else if host.Attrs().Flags&net.FlagUp == 0 {
		note("host veth %s is down", rec.HostVeth)
	}
	err = ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		checkPodSide(rec, note)
		return nil
	})
	if err != nil {
		note("pod netns %s: %v", netnsPath, err)
	}
	if host != nil {
		table := mainTable
		if rec.Kind == podstate.KindBranch && rec.Mode == podstate.ModeStrict {
			table = rec.RouteTable
		}
		if !hasRoute(table, hostPrefix(rec), host.Attrs().Index) {
			note("route %s dev %s missing from table %d", hostPrefix(rec), rec.HostVeth, table)
		}
	}
	if rec.Kind == podstate.KindBranch {
		checkBranch(rec, note)
	} else {
		checkRules(rec, note)
	}
	if len(drift) > 0 {
		return errors.New("pod network drifted: " + strings.Join(drift, "; "))
	}
	return nil
}

func checkPodSide(rec *podstate.Record, note func(string, ...any)) {
	link, err := netlink.LinkByName(rec.IfName)
	if err != nil {
		note("pod interface %s missing", rec.IfName)
		return
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_V4)
	found := false
	for _, a := range addrs {
		found = found || a.IP.Equal(rec.IP.AsSlice())
	}
	if !found {
		note("pod interface %s lacks %s", rec.IfName, rec.IP)
	}
	if !hasRoute(mainTable, nil, link.Attrs().Index) {
		note("pod default route missing")
	}
}

func checkBranch(rec *podstate.Record, note func(string, ...any)) {
	sub, err := netlink.LinkByName(rec.SubInterface)
	if err != nil {
		note("sub-interface %s missing", rec.SubInterface)
	} else {
		if !strings.EqualFold(sub.Attrs().HardwareAddr.String(), rec.BranchMAC) {
			note("sub-interface %s has MAC %s, want %s", rec.SubInterface, sub.Attrs().HardwareAddr, rec.BranchMAC)
		}
		if !hasRoute(rec.RouteTable, nil, sub.Attrs().Index) {
			note("default route via %s missing from table %d", rec.SubInterface, rec.RouteTable)
		}
	}
	checkRules(rec, note)
}

func checkRules(rec *podstate.Record, note func(string, ...any)) {
	existing, err := netlink.RuleList(netlink.FAMILY_V4)
	if err != nil {
		note("listing rules: %v", err)
		return
	}
	for _, want := range rules(rec) {
		if !hasRule(existing, want) {
			note("rule priority %d to table %d missing", want.Priority, want.Table)
		}
	}
}

// hasRoute reports whether table has a route to dst (nil: the default route) on link index.
func hasRoute(table int, dst *net.IPNet, index int) bool {
	filter := &netlink.Route{Table: table}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE)
	if err != nil {
		return false
	}
	for _, r := range routes {
		if r.LinkIndex != index {
			continue
		}
		isDefault := r.Dst == nil || r.Dst.IP.IsUnspecified()
		if dst == nil && isDefault || dst != nil && r.Dst != nil && r.Dst.String() == dst.String() {
			return true
		}
	}
	return false
}

func hasRule(existing []netlink.Rule, want *netlink.Rule) bool {
	for _, r := range existing {
		if r.Priority == want.Priority && r.Table == want.Table && r.IifName == want.IifName &&
			ipNetString(r.Src) == ipNetString(want.Src) && ipNetString(r.Dst) == ipNetString(want.Dst) {
			return true
		}
	}
	return false
}

func ipNetString(n *net.IPNet) string {
	if n == nil {
		return ""
	}
	return n.String()
}
