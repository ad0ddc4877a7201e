package podnet_test

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/containernetworking/plugins/pkg/testutils"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/testenv"
)

// The miniature VPC these tests build, all inside namespaces they create:
//
//	pod ── veth ── node ── trunk0 (10.99.0.10/24) ══ vxlan VNI <vlan> ══ (10.99.0.1, the trunk
//	subnet's gateway) fabric: br<vlan> = the pod subnet's gateway 10.30.0.1, one per branch ENI
//
// The fabric is reachable from the node's pods only through their vxlan sub-interfaces, so a
// pod that pings the gateway proves its traffic leaves through its branch. The fabric routes
// like a VPC router: each branch ENI's address to its own VNI, and the node's address back over
// trunk0, which also stands in for the node's primary ENI: the node's route to the pod subnet
// goes to the fabric, as an EC2 node's does to the VPC router.
const (
	trunkIP   = "10.99.0.10"
	fabricIP  = "10.99.0.1"
	gateway   = "10.30.0.1"
	podSubnet = "10.30.0.0/24"
	podIP     = "10.30.0.5"
	vlan      = 7
	branchMAC = "02:3b:a8:a7:9c:f5"
	port      = 4789
)

type world struct {
	node, fabric ns.NetNS
}

func newNS(t testing.TB) ns.NetNS {
	t.Helper()
	n, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = n.Close()
		_ = testutils.UnmountNS(n)
	})
	return n
}

func setup(t testing.TB) *world {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.IPRoute2, testenv.Ping, testenv.NFTables)
	w := &world{node: newNS(t), fabric: newNS(t)}
	run(t, w.node, "ip", "link", "add", "trunk0", "type", "veth", "peer", "name", "fab-trunk", "netns", w.fabric.Path())
	run(t, w.node, "ip", "addr", "add", trunkIP+"/24", "dev", "trunk0")
	run(t, w.node, "ip", "link", "set", "trunk0", "up")
	run(t, w.node, "ip", "route", "add", podSubnet, "via", fabricIP, "dev", "trunk0")
	run(t, w.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run(t, w.fabric, "ip", "addr", "add", fabricIP+"/24", "dev", "fab-trunk")
	run(t, w.fabric, "ip", "link", "set", "fab-trunk", "up")
	run(t, w.fabric, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	w.branchENI(t, vlan, podIP, branchMAC)
	return w
}

// branchENI gives the fabric the VPC's side of one branch ENI: the vxlan device of its VNI,
// answering for the subnet's gateway, and a route to the ENI's address through it. Like a VPC,
// the fabric knows which MAC (the branch ENI's) owns the address.
func (w *world) branchENI(t testing.TB, vni int, ip, mac string) {
	t.Helper()
	dev := fmt.Sprintf("br%d", vni)
	run(t, w.fabric, "ip", "link", "add", dev, "type", "vxlan", "id", strconv.Itoa(vni), "local", fabricIP, "remote", trunkIP, "dstport", strconv.Itoa(port), "dev", "fab-trunk")
	run(t, w.fabric, "ip", "addr", "add", gateway+"/32", "dev", dev)
	run(t, w.fabric, "ip", "link", "set", dev, "up")
	run(t, w.fabric, "ip", "route", "add", ip+"/32", "dev", dev)
	run(t, w.fabric, "ip", "neigh", "add", ip, "lladdr", mac, "dev", dev, "nud", "permanent")
}

func run(t testing.TB, n ns.NetNS, args ...string) string {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"--net=" + n.Path(), "--"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func ping(n ns.NetNS, ip string) error {
	return exec.Command("nsenter", "--net="+n.Path(), "--", "ping", "-c1", "-W1", ip).Run()
}

func branchRecord(mode string) *podstate.Record {
	return branchPod("postgres-test", podIP, vlan, branchMAC, mode)
}

// branchPod describes a branch pod as the agent would: host veth prefix "vlan" in strict mode
// and "eni" in standard, as AWS's VPC CNI names them.
func branchPod(name, ip string, vlanID int, mac, mode string) *podstate.Record {
	prefix := "eni"
	if mode == podstate.ModeStrict {
		prefix = "vlan"
	}
	return &podstate.Record{Version: podstate.Version, ContainerID: "c-" + name, IfName: "eth0", PodNamespace: "default", PodName: name,
		Kind: podstate.KindBranch, IP: netip.MustParseAddr(ip), Gateway: netip.MustParseAddr(gateway),
		HostVeth: podnet.HostVethName(prefix, "default", name), VLAN: vlanID, BranchMAC: mac,
		SubnetCIDR: podSubnet, SubInterface: podnet.SubInterfaceName(vlanID), TrunkLink: "trunk0",
		RouteTable: 100 + vlanID, Mode: mode, TrunkGateway: netip.MustParseAddr(fabricIP)}
}

var driver = podnet.VXLAN{Port: port}

func add(t testing.TB, w *world, pod ns.NetNS, rec *podstate.Record) error {
	t.Helper()
	return w.node.Do(func(ns.NetNS) error {
		_, err := podnet.Add(pod.Path(), rec, podnet.Options{MTU: 1400, Driver: driver})
		return err
	})
}

func inNode(t testing.TB, w *world, fn func() error) error {
	t.Helper()
	return w.node.Do(func(ns.NetNS) error { return fn() })
}

func TestBranchPodReachesItsGatewayThroughTheSubInterface(t *testing.T) {
	for _, mode := range []string{podstate.ModeStrict, podstate.ModeStandard} {
		t.Run(mode, func(t *testing.T) {
			w := setup(t)
			podNS := newNS(t)
			rec := branchRecord(mode)
			if err := add(t, w, podNS, rec); err != nil {
				t.Fatal(err)
			}
			if err := ping(podNS, gateway); err != nil {
				t.Fatalf("pod cannot reach its gateway through %s: %v\nnode rules:\n%s", rec.SubInterface, err, run(t, w.node, "ip", "rule"))
			}
			if err := inNode(t, w, func() error { return podnet.Check(podNS.Path(), rec) }); err != nil {
				t.Fatalf("CHECK right after ADD: %v", err)
			}
			// CHECK notices drift: remove the sub-interface's default route.
			run(t, w.node, "ip", "route", "del", "default", "table", "107")
			err := inNode(t, w, func() error { return podnet.Check(podNS.Path(), rec) })
			if err == nil || !strings.Contains(err.Error(), "default route via "+rec.SubInterface) {
				t.Fatalf("CHECK after deleting the route = %v, want drift naming it", err)
			}
			for i := range 2 { // DEL is idempotent
				if err := inNode(t, w, func() error { return podnet.Del(podNS.Path(), rec) }); err != nil {
					t.Fatalf("DEL #%d: %v", i+1, err)
				}
			}
			expectClean(t, w, podNS, rec)
		})
	}
}

func TestRegularPod(t *testing.T) {
	w := setup(t)
	podNS := newNS(t)
	rec := &podstate.Record{Version: podstate.Version, ContainerID: "c2", IfName: "eth0", PodNamespace: "default", PodName: "web",
		Kind: podstate.KindRegular, IP: netip.MustParseAddr("10.99.0.50"), HostVeth: podnet.HostVethName("eni", "default", "web")}
	if err := add(t, w, podNS, rec); err != nil {
		t.Fatal(err)
	}
	// The node reaches the pod over the veth, and the pod reaches the node's address through it.
	if err := w.node.Do(func(ns.NetNS) error { return exec.Command("ping", "-c1", "-W1", "10.99.0.50").Run() }); err != nil {
		t.Fatalf("node -> pod: %v", err)
	}
	if err := ping(podNS, trunkIP); err != nil {
		t.Fatalf("pod -> node: %v", err)
	}
	if err := inNode(t, w, func() error { return podnet.Del(podNS.Path(), rec) }); err != nil {
		t.Fatal(err)
	}
	expectClean(t, w, podNS, rec)
}

// TestRegularPodOnASecondaryENI: a regular pod whose IP belongs to a secondary ENI sends
// through that ENI, because the fabric, like EC2, drops a packet whose source address does not
// belong to the ENI it came from (here: strict reverse-path filtering, with the pod's address
// routed to the secondary ENI). CHECK notices its source rule missing; DEL removes both rules.
func TestRegularPodOnASecondaryENI(t *testing.T) {
	const (
		eniIP, eniFabricIP = "10.98.0.10", "10.98.0.1"
		ip, table          = "10.99.0.60", 3 // device index 2, as the agent numbers tables
	)
	w := setup(t)
	run(t, w.node, "ip", "link", "add", "eth2", "type", "veth", "peer", "name", "fab-eth2", "netns", w.fabric.Path())
	run(t, w.node, "ip", "addr", "add", eniIP+"/32", "dev", "eth2")
	run(t, w.node, "ip", "link", "set", "eth2", "up")
	run(t, w.node, "ip", "route", "add", eniFabricIP+"/32", "dev", "eth2", "scope", "link", "table", strconv.Itoa(table))
	run(t, w.node, "ip", "route", "add", "default", "via", eniFabricIP, "dev", "eth2", "table", strconv.Itoa(table))
	run(t, w.fabric, "ip", "addr", "add", eniFabricIP+"/24", "dev", "fab-eth2")
	run(t, w.fabric, "ip", "link", "set", "fab-eth2", "up")
	run(t, w.fabric, "ip", "route", "add", ip+"/32", "via", eniIP, "dev", "fab-eth2", "onlink")
	run(t, w.fabric, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1")

	podNS := newNS(t)
	rec := &podstate.Record{Version: podstate.Version, ContainerID: "c3", IfName: "eth0", PodNamespace: "default", PodName: "api",
		Kind: podstate.KindRegular, IP: netip.MustParseAddr(ip), HostVeth: podnet.HostVethName("eni", "default", "api"), RouteTable: table}
	if err := add(t, w, podNS, rec); err != nil {
		t.Fatal(err)
	}
	if err := ping(podNS, fabricIP); err != nil {
		t.Fatalf("pod -> VPC through its ENI: %v\n%s", err, run(t, w.node, "ip", "rule"))
	}
	if err := w.node.Do(func(ns.NetNS) error { return exec.Command("ping", "-c1", "-W1", ip).Run() }); err != nil {
		t.Fatalf("node -> pod: %v", err)
	}
	if err := inNode(t, w, func() error { return podnet.Check(podNS.Path(), rec) }); err != nil {
		t.Fatalf("CHECK right after ADD: %v", err)
	}
	run(t, w.node, "ip", "rule", "del", "from", ip, "table", strconv.Itoa(table), "priority", strconv.Itoa(podnet.PriorityFromPod))
	if err := ping(podNS, fabricIP); err == nil {
		t.Fatal("pod -> VPC succeeded without its source rule: the fabric does not check source addresses, the test proves nothing")
	}
	err := inNode(t, w, func() error { return podnet.Check(podNS.Path(), rec) })
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("priority %d to table %d missing", podnet.PriorityFromPod, table)) {
		t.Fatalf("CHECK with the source rule deleted = %v, want it reported", err)
	}
	if err := inNode(t, w, func() error { return podnet.Del(podNS.Path(), rec) }); err != nil {
		t.Fatal(err)
	}
	expectClean(t, w, podNS, rec)
}

// TestFailedAddRollsBack: a branch ADD that fails after the veth exists (the trunk link is
// missing) leaves no interface, route or rule behind.
func TestFailedAddRollsBack(t *testing.T) {
	w := setup(t)
	podNS := newNS(t)
	rec := branchRecord(podstate.ModeStrict)
	rec.TrunkLink = "no-such-trunk"
	err := add(t, w, podNS, rec)
	if err == nil || !strings.Contains(err.Error(), "no-such-trunk") {
		t.Fatalf("ADD = %v, want an error naming the missing trunk", err)
	}
	expectClean(t, w, podNS, rec)
}

// TestDelWithoutNetns: kubelet may send DEL after the pod's namespace is gone.
func TestDelWithoutNetns(t *testing.T) {
	w := setup(t)
	podNS := newNS(t)
	rec := branchRecord(podstate.ModeStrict)
	if err := add(t, w, podNS, rec); err != nil {
		t.Fatal(err)
	}
	path := podNS.Path()
	_ = podNS.Close()
	if err := testutils.UnmountNS(podNS); err != nil {
		t.Fatal(err)
	}
	if err := inNode(t, w, func() error { return podnet.Del(path, rec) }); err != nil {
		t.Fatalf("DEL with the netns gone: %v", err)
	}
	if err := inNode(t, w, func() error { return podnet.Del("", rec) }); err != nil {
		t.Fatalf("DEL with no netns: %v", err)
	}
	expectClean(t, w, nil, rec)
}

func expectClean(t testing.TB, w *world, podNS ns.NetNS, rec *podstate.Record) {
	t.Helper()
	err := w.node.Do(func(ns.NetNS) error {
		for _, name := range []string{rec.HostVeth, rec.SubInterface} {
			if name == "" {
				continue
			}
			if _, err := netlink.LinkByName(name); err == nil {
				t.Errorf("link %s left behind", name)
			}
		}
		rules, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		podIP := rec.IP.String() + "/32"
		for _, r := range rules {
			if rec.RouteTable != 0 && r.Table == rec.RouteTable || r.Src != nil && r.Src.String() == podIP || r.Dst != nil && r.Dst.String() == podIP {
				t.Errorf("rule %s left behind", r)
			}
		}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.IP.Equal(rec.IP.AsSlice()) {
				t.Errorf("route %s left behind", r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if podNS == nil {
		return
	}
	err = podNS.Do(func(ns.NetNS) error {
		if _, err := netlink.LinkByName(rec.IfName); err == nil {
			t.Errorf("pod interface %s left behind", rec.IfName)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
