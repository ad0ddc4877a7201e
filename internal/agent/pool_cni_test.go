package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/testenv"
)

// TestRegularPodsBeyondThePrimaryENI: a t3.small takes 3 ENIs of 3 secondary IPs each. The
// runtime starts 7 regular pods through libcni and the built plugin: the agent hands out the
// primary ENI's IPs, then attaches ENIs and hands out theirs. Every pod reaches an address in
// the VPC with its own IP as source — which the local VPC, like EC2, only lets through when a
// pod on a secondary ENI sends through that ENI. After an agent restart an eighth pod gets an
// address nobody holds; CHECK holds for all, and DEL leaves the node clean.
func TestRegularPodsBeyondThePrimaryENI(t *testing.T) {
	testenv.RequireRoot(t)
	w := newWorld(t, false)
	node := w.instance(t, types.InstanceTypeT3Small)
	w.startAgent(t, node, false, "--warm-ip-target=3")
	seen := listen(t, w.hostIP)

	type runningPod struct {
		pod *corev1.Pod
		ns  ns.NetNS
	}
	var pods []runningPod
	start := func(name string) {
		p := runningPod{pod: w.pod(t, name, false), ns: newNetNS(t)}
		w.cniAddRetry(t, node, p.ns, p.pod)
		pods = append(pods, p)
	}
	for i := range 7 {
		start(fmt.Sprintf("web-%d", i))
	}

	recs := w.records(t)
	enis := w.instanceENIs(t, node)
	if len(enis) != 3 {
		t.Fatalf("%d ENIs attached, want 3: the primary and two for pod IPs", len(enis))
	}
	perENI := map[string][]podstate.Record{}
	for _, r := range recs {
		perENI[r.ENIID] = append(perENI[r.ENIID], r)
	}
	for _, e := range enis {
		for _, r := range perENI[*e.NetworkInterfaceId] {
			if wantTable := map[int32]int{0: 0, 1: 2, 2: 3}[*e.Attachment.DeviceIndex]; r.RouteTable != wantTable {
				t.Errorf("pod %s on %s (device %d): table %d, want %d", r.PodName, *e.NetworkInterfaceId, *e.Attachment.DeviceIndex, r.RouteTable, wantTable)
			}
		}
	}
	if n := len(perENI[*enis[0].NetworkInterfaceId]); n != 3 {
		t.Errorf("%d pods on the primary ENI, want 3 (filled first)", n)
	}
	if len(perENI[*enis[1].NetworkInterfaceId]) == 0 {
		t.Errorf("no pod on the first ENI the agent attached; records: %+v", recs)
	}

	for _, p := range pods {
		w.connectFrom(t, p.ns, seen)
	}
	if code, body := getInNetns(t, node, "http://127.0.0.1:8482/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	_, metrics := getInNetns(t, node, "http://127.0.0.1:8482/metrics")
	for _, want := range []string{"podsg_agent_enis 3", `podsg_agent_pod_ips{state="used"} 7`, `podsg_agent_cni_requests_total{op="add",result="ok"} 7`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	for _, r := range recs {
		if !seen.has(r.IP) {
			t.Errorf("pod %s (%s, table %d) never reached the VPC with its own address", r.PodName, r.IP, r.RouteTable)
		}
	}

	// Restart: the new agent learns from EC2 and the records which IPs are free.
	w.agent.Kill()
	w.startAgent(t, node, false, "--warm-ip-target=3")

	// ADD failing halfway: a route to the pod's IP already in the node's main table makes the
	// host route fail after the veth and the pod's address exist. Nothing may stay behind, and
	// the IP must go back to the pool, where it rests for the cooldown.
	next := w.nextFreeIP(t, node)
	inNodeNS(t, node, "ip", "route", "add", next.String()+"/32", "dev", "lo")
	failing := runningPod{pod: w.pod(t, "web-7", false), ns: newNetNS(t)}
	err := w.inNode(t, node, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
		_, err := c.AddNetworkList(context.WithoutCancel(t.Context()), l, w.runtimeConf(failing.ns, failing.pod))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "adding route") {
		t.Fatalf("ADD with the pod's route taken = %v, want the route error", err)
	}
	for _, r := range w.records(t) {
		if r.PodName == "web-7" {
			t.Errorf("failed ADD left its record: %+v", r)
		}
	}
	w.expectNoTrace(t, node, next, podnet.HostVethName("eni", "default", "web-7"))
	if _, m := getInNetns(t, node, "http://127.0.0.1:8482/metrics"); !strings.Contains(m, `podsg_agent_pod_ips{state="cooling"} 1`) {
		t.Errorf("the failed ADD's IP is not back in the pool, cooling:\n%s", m)
	}
	inNodeNS(t, node, "ip", "route", "del", next.String()+"/32", "dev", "lo")
	w.cniAddRetry(t, node, failing.ns, failing.pod)
	pods = append(pods, failing)
	if got := w.records(t); slices.ContainsFunc(got, func(r podstate.Record) bool { return r.PodName == "web-7" && r.IP == next }) {
		t.Errorf("the retried ADD got %s, released a moment ago, before its cooldown", next)
	}
	ips := map[netip.Addr]string{}
	for _, r := range w.records(t) {
		if other, dup := ips[r.IP]; dup {
			t.Errorf("%s given to both %s and %s", r.IP, other, r.PodName)
		}
		ips[r.IP] = r.PodName
	}
	w.connectFrom(t, failing.ns, seen)
	for _, p := range pods {
		w.cniCheck(t, node, p.ns, p.pod)
	}
	for _, p := range pods {
		w.cniDel(t, node, p.ns, p.pod)
	}
	w.expectNodeClean(t, node)
}

// cniAddRetry is ADD as kubelet drives it: "try again later" (no free IP yet, while the agent
// attaches an ENI) is retried.
func (w *world) cniAddRetry(t *testing.T, nodeNS string, podNS ns.NetNS, pod *corev1.Pod) {
	t.Helper()
	testenv.Eventually(t, 0, func(context.Context) error {
		err := w.inNode(t, nodeNS, func(c *libcni.CNIConfig, l *libcni.NetworkConfigList) error {
			_, err := c.AddNetworkList(context.WithoutCancel(t.Context()), l, w.runtimeConf(podNS, pod))
			return err
		})
		if err == nil {
			return nil
		}
		// Try-again-later is the agent still warming its pool: poll again.
		if ce, ok := errors.AsType[*cnitypes.Error](err); ok && ce.Code == cnitypes.ErrTryAgainLater {
			return err
		}
		return testenv.Abort(fmt.Errorf("CNI ADD %s: %w\nagent log:\n%s", pod.Name, err, w.agent.LogTail()))
	})
}

func (w *world) records(t *testing.T) []podstate.Record {
	t.Helper()
	store, err := podstate.NewStore(w.podState)
	if err != nil {
		t.Fatal(err)
	}
	recs, errs := store.List()
	if len(errs) > 0 {
		t.Fatalf("unreadable records: %v", errs)
	}
	out := make([]podstate.Record, 0, len(recs))
	for _, r := range recs {
		out = append(out, *r)
	}
	return out
}

// instanceENIs returns the node's ENIs by device index.
func (w *world) instanceENIs(t *testing.T, nodeNS string) []types.NetworkInterface {
	t.Helper()
	id := nodeNS[len(w.names.Prefix()):]
	out := must(w.ec2.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: strPtr("attachment.instance-id"), Values: []string{id}}}}))(t)
	enis := out.NetworkInterfaces
	slices.SortFunc(enis, func(a, b types.NetworkInterface) int {
		return int(*a.Attachment.DeviceIndex - *b.Attachment.DeviceIndex)
	})
	return enis
}

func strPtr(s string) *string { return &s }

// sources records the remote addresses of the connections a listener accepted.
type sources struct {
	addr string
	mu   sync.Mutex
	ips  map[netip.Addr]bool
}

func (s *sources) has(ip netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ips[ip]
}

// listen accepts TCP on ip (the root namespace's address in the VPC) and notes who connected.
func listen(t *testing.T, ip string) *sources {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	s := &sources{addr: l.Addr().String(), ips: map[netip.Addr]bool{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			if a, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
				s.mu.Lock()
				s.ips[a.Addr()] = true
				s.mu.Unlock()
			}
			_ = c.Close()
		}
	}()
	return s
}

// connectFrom opens a TCP connection from inside a pod to the listener and waits until the
// listener has seen it (the accept runs on its own goroutine).
func (w *world) connectFrom(t *testing.T, podNS ns.NetNS, s *sources) {
	t.Helper()
	var local netip.Addr
	err := podNS.Do(func(ns.NetNS) error {
		c, err := net.DialTimeout("tcp", s.addr, 3*time.Second)
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		a, err := netip.ParseAddrPort(c.LocalAddr().String())
		local = a.Addr()
		return err
	})
	if err != nil {
		t.Fatalf("connecting from pod netns %s to %s: %v", podNS.Path(), s.addr, err)
	}
	testenv.Eventually(t, 0, func(context.Context) error {
		if !s.has(local) {
			return fmt.Errorf("the listener has not seen %s", local)
		}
		return nil
	})
}

// getInNetns GETs url from inside the namespace: the connection is opened on a thread in it
// (a socket stays in the namespace it was created in), then used from anywhere.
func getInNetns(t *testing.T, netns, url string) (int, string) {
	t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	err = ns.WithNetNSPath("/run/netns/"+netns, func(ns.NetNS) error {
		var err error
		conn, err = net.DialTimeout("tcp", u.Host, 3*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connecting to %s in %s: %v", u.Host, netns, err)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s in %s: %v", url, netns, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// nextFreeIP is the address the agent hands out next: the lowest free one of the ENI with the
// lowest device index that has one (Pool.Allocate), free meaning assigned in EC2 and in no
// record.
func (w *world) nextFreeIP(t *testing.T, nodeNS string) netip.Addr {
	t.Helper()
	held := map[netip.Addr]bool{}
	for _, r := range w.records(t) {
		held[r.IP] = true
	}
	for _, e := range w.instanceENIs(t, nodeNS) {
		var free []netip.Addr
		for _, a := range e.PrivateIpAddresses {
			ip := netip.MustParseAddr(*a.PrivateIpAddress)
			if !*a.Primary && !held[ip] {
				free = append(free, ip)
			}
		}
		if len(free) > 0 {
			return slices.MinFunc(free, netip.Addr.Compare)
		}
	}
	t.Fatal("no free pod IP on the node")
	return netip.Addr{}
}

func inNodeNS(t *testing.T, nodeNS string, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"netns", "exec", nodeNS}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// expectNoTrace checks that the node has no link named veth and no rule or route for ip
// but the test's own.
func (w *world) expectNoTrace(t *testing.T, nodeNS string, ip netip.Addr, veth string) {
	t.Helper()
	err := ns.WithNetNSPath("/run/netns/"+nodeNS, func(ns.NetNS) error {
		if _, err := netlink.LinkByName(veth); err == nil {
			t.Errorf("link %s left behind", veth)
		}
		rules, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		host := ip.String() + "/32"
		for _, r := range rules {
			if r.Src != nil && r.Src.String() == host || r.Dst != nil && r.Dst.String() == host {
				t.Errorf("rule %s left behind", r)
			}
		}
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if r.Dst != nil && r.Dst.String() == host && r.LinkIndex != 1 { // 1: lo, the test's blocker
				t.Errorf("route %s left behind", r)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
