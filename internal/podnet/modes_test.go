package podnet_test

import (
	"bufio"
	"errors"
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
)

// The documented differences between strict and standard mode
// (shared/research/node-side.md §1.4, §1.6), decided by packets in the miniature VPC: the fabric
// counts what it forwards between two addresses, and can drop it, so a test sees whether a
// flow hairpins through the VPC (where the branch ENIs' security groups apply) or stays on the
// node.

const (
	podIP2     = "10.30.0.6"
	vlan2      = 8
	branchMAC2 = "02:3b:a8:a7:9c:f6"
)

// strictNode applies what the agent's configureNode does on a strict-mode node
// (internal/agent/node.go): the local table moves from priority 0 to 20, behind the branch
// pods' priority-10 rules, and TCP early demux is off. Without the move, a strict pod's traffic
// to its own node would be delivered locally, and the node's traffic coming back to a pod
// through the trunk would be dropped as a martian (its source is a local address).
func strictNode(t *testing.T, w *world) {
	t.Helper()
	run(t, w.node, "ip", "rule", "add", "priority", "20", "lookup", "local")
	run(t, w.node, "ip", "rule", "del", "priority", "0", "lookup", "local")
	run(t, w.node, "sysctl", "-qw", "net.ipv4.tcp_early_demux=0")
}

// fabricFlows makes the fabric count the packets it forwards for each (source, destination)
// pair; count reads a counter, drop makes the fabric drop a flow from then on.
type fabricFlows struct {
	t *testing.T
	w *world
}

func watchFabric(t *testing.T, w *world, flows ...[2]string) *fabricFlows {
	t.Helper()
	run(t, w.fabric, "nft", "add", "table", "ip", "fab")
	run(t, w.fabric, "nft", "add", "chain", "ip", "fab", "relay", "{ type filter hook forward priority 0; policy accept; }")
	for _, f := range flows {
		name := counterName(f[0], f[1])
		run(t, w.fabric, "nft", "add", "counter", "ip", "fab", name)
		run(t, w.fabric, "nft", "add", "rule", "ip", "fab", "relay", "ip", "saddr", f[0], "ip", "daddr", f[1], "counter", "name", name)
	}
	return &fabricFlows{t: t, w: w}
}

var counterRE = regexp.MustCompile(`packets (\d+)`)

func (f *fabricFlows) count(src, dst string) int {
	f.t.Helper()
	out := run(f.t, f.w.fabric, "nft", "list", "counter", "ip", "fab", counterName(src, dst))
	m := counterRE.FindStringSubmatch(out)
	if m == nil {
		f.t.Fatalf("no packet count in %q", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (f *fabricFlows) drop(src, dst string) {
	f.t.Helper()
	run(f.t, f.w.fabric, "nft", "add", "rule", "ip", "fab", "relay", "ip", "saddr", src, "ip", "daddr", dst, "drop")
}

func counterName(src, dst string) string {
	return "flow_" + regexp.MustCompile(`\W`).ReplaceAllString(src+"_to_"+dst, "_")
}

// TestSameNodePods: two branch pods on one node. In strict mode their traffic to each other
// leaves through the sub-interface and hairpins through the VPC, so the fabric (the security
// groups' place) sees it and can stop it; in standard mode the node delivers it directly.
func TestSameNodePods(t *testing.T) {
	for _, mode := range []string{podstate.ModeStrict, podstate.ModeStandard} {
		t.Run(mode, func(t *testing.T) {
			w := setup(t)
			w.branchENI(t, vlan2, podIP2, branchMAC2)
			if mode == podstate.ModeStrict {
				strictNode(t, w)
			}
			a, b := branchPod("postgres-test", podIP, vlan, branchMAC, mode), branchPod("web-test", podIP2, vlan2, branchMAC2, mode)
			nsA, nsB := newNS(t), newNS(t)
			for _, p := range []struct {
				rec *podstate.Record
				ns  ns.NetNS
			}{{a, nsA}, {b, nsB}} {
				if err := add(t, w, p.ns, p.rec); err != nil {
					t.Fatal(err)
				}
				defer func() {
					if err := inNode(t, w, func() error { return podnet.Del(p.ns.Path(), p.rec) }); err != nil {
						t.Error(err)
					}
					expectClean(t, w, p.ns, p.rec)
				}()
			}
			fab := watchFabric(t, w, [2]string{podIP, podIP2}, [2]string{podIP2, podIP})

			if err := ping(nsA, podIP2); err != nil {
				t.Fatalf("pod -> same-node pod: %v\nnode rules:\n%s", err, run(t, w.node, "ip", "rule"))
			}
			there, back := fab.count(podIP, podIP2), fab.count(podIP2, podIP)
			fab.drop(podIP, podIP2)
			err := ping(nsA, podIP2)
			if mode == podstate.ModeStrict {
				if there == 0 || back == 0 {
					t.Fatalf("the VPC forwarded %d request(s) and %d reply(ies) between the pods, want both through it", there, back)
				}
				if err == nil {
					t.Fatal("the pods still reach each other with the VPC dropping their traffic")
				}
				return
			}
			if there != 0 || back != 0 {
				t.Fatalf("the VPC forwarded %d request(s) and %d reply(ies) between same-node pods, want none", there, back)
			}
			if err != nil {
				t.Fatalf("with the VPC dropping pod-to-pod traffic, same-node pods must still reach each other: %v", err)
			}
		})
	}
}

// TestNodeToPod is kubelet's probe path. In standard mode the node reaches the branch pod over
// the main table's route to its host veth; in strict mode there is no such route, so the
// node's traffic (ICMP and a TCP connection, as an HTTP or TCP probe makes) goes out to the
// VPC and comes back through the trunk, and the replies leave through the branch too.
func TestNodeToPod(t *testing.T) {
	for _, mode := range []string{podstate.ModeStrict, podstate.ModeStandard} {
		t.Run(mode, func(t *testing.T) {
			w := setup(t)
			if mode == podstate.ModeStrict {
				strictNode(t, w)
			}
			rec, podNS := branchRecord(mode), newNS(t)
			if err := add(t, w, podNS, rec); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := inNode(t, w, func() error { return podnet.Del(podNS.Path(), rec) }); err != nil {
					t.Error(err)
				}
				expectClean(t, w, podNS, rec)
			}()
			fab := watchFabric(t, w, [2]string{trunkIP, podIP}, [2]string{podIP, trunkIP})

			var viaHostVeth bool
			err := inNode(t, w, func() error {
				routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 254, Dst: &net.IPNet{IP: net.ParseIP(podIP).To4(), Mask: net.CIDRMask(32, 32)}},
					netlink.RT_FILTER_TABLE|netlink.RT_FILTER_DST)
				viaHostVeth = len(routes) > 0
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := mode == podstate.ModeStandard; viaHostVeth != want {
				t.Fatalf("main table has a route to the pod: %v, want %v\n%s", viaHostVeth, want, run(t, w.node, "ip", "route", "show", "table", "main"))
			}

			if err := pingFromNode(w, podIP); err != nil {
				t.Fatalf("node -> pod (ICMP): %v", err)
			}
			if err := probe(t, w, podNS); err != nil {
				t.Fatalf("node -> pod (TCP probe): %v", err)
			}
			if mode == podstate.ModeStrict {
				// Why the agent turns TCP early demux off on strict nodes (AWS: PR #1212): with
				// it on, the kernel drops the probe's handshake on this asymmetric path.
				run(t, w.node, "sysctl", "-qw", "net.ipv4.tcp_early_demux=1")
				t.Logf("TCP probe with tcp_early_demux=1 (expected to fail): %v", probe(t, w, podNS))
				run(t, w.node, "sysctl", "-qw", "net.ipv4.tcp_early_demux=0")
			}
			there, back := fab.count(trunkIP, podIP), fab.count(podIP, trunkIP)
			fab.drop(trunkIP, podIP)
			err = pingFromNode(w, podIP)
			if mode == podstate.ModeStrict {
				// ICMP echo and reply, and at least the TCP handshake and the answer, each way.
				if there < 3 || back < 3 {
					t.Fatalf("the VPC forwarded %d packet(s) node -> pod and %d pod -> node, want the probes' traffic both ways", there, back)
				}
				if err == nil {
					t.Fatal("the node still reaches the pod with the VPC dropping its traffic: the probe would bypass the pod's security groups")
				}
				return
			}
			if there != 0 || back != 0 {
				t.Fatalf("the VPC forwarded %d packet(s) node -> pod and %d pod -> node, want none in standard mode", there, back)
			}
			if err != nil {
				t.Fatalf("with the VPC dropping node -> pod traffic, the node must still reach the pod directly: %v", err)
			}
		})
	}
}

func pingFromNode(w *world, ip string) error { return ping(w.node, ip) }

// probe is a TCP probe from the node: connect to a listener in the pod, read its answer.
func probe(t *testing.T, w *world, podNS ns.NetNS) error {
	t.Helper()
	var l net.Listener
	err := podNS.Do(func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp4", net.JoinHostPort(podIP, "8080"))
		return err
	})
	if err != nil {
		return err
	}
	defer func() { _ = l.Close() }()
	served := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			served <- err
			return
		}
		defer func() { _ = c.Close() }()
		_, err = c.Write([]byte("ok\n"))
		served <- err
	}()
	var answer string
	err = inNode(t, w, func() error {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(podIP, "8080"), time.Second)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
			return err
		}
		answer, err = bufio.NewReader(c).ReadString('\n')
		return err
	})
	if err != nil {
		_ = l.Close()
		if serr := <-served; !errors.Is(serr, net.ErrClosed) {
			err = errors.Join(err, serr)
		}
		return err
	}
	if err := <-served; err != nil {
		return err
	}
	if answer != "ok\n" {
		return errors.New("unexpected answer " + strconv.Quote(answer))
	}
	return nil
}
