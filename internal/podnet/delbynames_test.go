package podnet_test

import (
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
)

// TestDelByNames: a pod set up by Add is torn down from its names alone (what a DEL knows when
// the pod's record is unusable), for each kind of pod and whether the runtime passes the pod's
// namespace, passes none, or passes one that is gone. A regular pod on a secondary ENI shares
// that ENI's table: the ENI's link and routes must survive. (A regular pod whose namespace is
// gone leaves its address rules, which nothing names any more: DelByNames says so.)
func TestDelByNames(t *testing.T) {
	const eniTable = 3
	regular := func(ip string, table int) *podstate.Record {
		return &podstate.Record{Version: podstate.Version, ContainerID: "c-web", IfName: "eth0", PodNamespace: "default", PodName: "web",
			Kind: podstate.KindRegular, IP: netip.MustParseAddr(ip), HostVeth: podnet.HostVethName("eni", "default", "web"), RouteTable: table}
	}
	tests := map[string]struct {
		rec   *podstate.Record
		netns string // "pass", "none" (CNI_NETNS unset) or "gone"
	}{
		"regular":                          {regular("10.99.0.50", 0), "pass"},
		"regular without netns":            {regular("10.99.0.50", 0), "none"},
		"regular on a secondary ENI":       {regular("10.99.0.60", eniTable), "pass"},
		"regular on a secondary ENI no ns": {regular("10.99.0.60", eniTable), "none"},
		"strict branch":                    {branchRecord(podstate.ModeStrict), "pass"},
		"strict branch without netns":      {branchRecord(podstate.ModeStrict), "none"},
		"strict branch, netns gone":        {branchRecord(podstate.ModeStrict), "gone"},
		"standard branch":                  {branchRecord(podstate.ModeStandard), "pass"},
		"standard branch without netns":    {branchRecord(podstate.ModeStandard), "none"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := setup(t)
			// A secondary ENI and its table, as the agent sets them up.
			run(t, w.node, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "fab-eth2", "netns", w.fabric.Path())
			run(t, w.node, "ip", "link", "set", "eth2", "up")
			run(t, w.node, "ip", "route", "add", "default", "dev", "eth2", "table", strconv.Itoa(eniTable))
			podNS := newNS(t)
			rec := tc.rec
			if err := add(t, w, podNS, rec); err != nil {
				t.Fatal(err)
			}
			path := podNS.Path()
			switch tc.netns {
			case "none":
				path = ""
			case "gone":
				_ = podNS.Close()
				if err := testutils.UnmountNS(podNS); err != nil {
					t.Fatal(err)
				}
			}
			names := podnet.Names{IfName: rec.IfName, HostVeths: []string{
				podnet.HostVethName("eni", rec.PodNamespace, rec.PodName), podnet.HostVethName("vlan", rec.PodNamespace, rec.PodName)}}
			var found podnet.Found
			err := inNode(t, w, func() (err error) { found, err = podnet.DelByNames(path, names, podnet.Spare{}); return err })
			if err != nil {
				t.Fatalf("DelByNames: %v", err)
			}
			t.Logf("found %s", found)
			if rec.Kind == podstate.KindBranch && !slices.Equal(found.SubInterfaces, []string{rec.SubInterface}) {
				t.Errorf("found sub-interfaces %v, want [%s]", found.SubInterfaces, rec.SubInterface)
			}
			if tc.netns != "gone" && !slices.Equal(found.IPs, []netip.Addr{rec.IP}) {
				t.Errorf("found addresses %v, want [%s]", found.IPs, rec.IP)
			}
			if err := inNode(t, w, func() error { _, err := podnet.DelByNames(path, names, podnet.Spare{}); return err }); err != nil {
				t.Fatalf("second DelByNames: %v", err)
			}
			gone := podNS
			if tc.netns == "gone" {
				gone = nil
			}
			expectClean(t, w, gone, rec)
			if rec.RouteTable == eniTable {
				expectENITableKept(t, w, eniTable)
			}
		})
	}
}

// TestDelByNamesSparesOtherRecords: when another record holds the names (the pod's new sandbox,
// set up before the old one's DEL), nothing of it is touched.
func TestDelByNamesSparesOtherRecords(t *testing.T) {
	for _, mode := range []string{podstate.ModeStrict, podstate.ModeStandard} {
		t.Run(mode, func(t *testing.T) {
			w := setup(t)
			podNS := newNS(t)
			rec := branchRecord(mode)
			if err := add(t, w, podNS, rec); err != nil {
				t.Fatal(err)
			}
			names := podnet.Names{IfName: rec.IfName, HostVeths: []string{
				podnet.HostVethName("eni", rec.PodNamespace, rec.PodName), podnet.HostVethName("vlan", rec.PodNamespace, rec.PodName)}}
			// The old sandbox's DEL, without a namespace: everything it could find is the new one's.
			if err := inNode(t, w, func() error {
				_, err := podnet.DelByNames("", names, podnet.SpareOf([]*podstate.Record{rec}))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if err := inNode(t, w, func() error { return podnet.Check(podNS.Path(), rec) }); err != nil {
				t.Fatalf("the spared pod's network changed: %v", err)
			}
		})
	}
}

func expectENITableKept(t *testing.T, w *world, table int) {
	t.Helper()
	err := w.node.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName("eth2"); err != nil {
			t.Errorf("the ENI's link is gone: %v", err)
		}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		if len(routes) == 0 {
			t.Errorf("the ENI's table %d lost its default route", table)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
