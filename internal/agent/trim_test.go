package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
)

// The pool's targets, synchronously, on the fake EC2 and a fake clock: a t3.small holds 3
// ENIs of 3 secondary IPs each.

const trimInstance = "i-trim"

// eniState is one ENI of the instance before the pool starts: device index = position.
type eniState struct {
	ips, used, cooling int  // secondary IPs; of them held by pods, released within the cool-down
	notOurs            bool // attached by someone else (no podsg.io/instance-id tag)
	trunk              bool // the controller's trunk
}

type trimWorld struct {
	ec2  *fake.EC2
	clk  *clocktesting.FakePassiveClock
	pool *Pool
	// pods maps the records' keys to the IPs they hold, as the node's records would.
	pods map[string]netip.Addr
	// cooling are the IPs released at the start, within their cool-down.
	cooling []netip.Addr
}

// newTrimWorld builds the instance, starts a pool on it (Sync, with the used and cooling IPs
// held by records), lets MinAge pass, and then releases the cooling IPs.
func newTrimWorld(t *testing.T, targets Targets, state []eniState) *trimWorld {
	t.Helper()
	ctx := t.Context()
	f := fake.New()
	f.AddSubnet(cloud.Subnet{ID: "subnet-1", VPCID: "vpc-1", CIDR: "10.0.0.0/24", AvailabilityZone: "us-west-2a"})
	f.AddSecurityGroup(cloud.SecurityGroup{ID: "sg-node", VPCID: "vpc-1"})
	if err := f.AddInstance(fake.Instance{ID: trimInstance, Type: "t3.small", SubnetID: "subnet-1", SecurityGroups: []string{"sg-node"}, MaxENIs: 3}); err != nil {
		t.Fatal(err)
	}
	w := &trimWorld{ec2: f, clk: clocktesting.NewFakePassiveClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), pods: map[string]netip.Addr{}}
	for device, s := range state {
		eni := w.attached(t)[0]
		if device > 0 {
			in := cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", SecondaryIPCount: s.ips, Tags: map[string]string{cloud.TagInstance: trimInstance}}
			if s.notOurs || s.trunk {
				in.Tags = nil
			}
			if s.trunk {
				in.Type = cloud.InterfaceTypeTrunk
			}
			var err error
			if eni, err = f.CreateNetworkInterface(ctx, in); err != nil {
				t.Fatal(err)
			}
			if _, err := f.AttachNetworkInterface(ctx, eni.ID, trimInstance, device); err != nil {
				t.Fatal(err)
			}
		} else if s.ips > 0 {
			if _, err := f.AssignPrivateIPs(ctx, eni.ID, s.ips); err != nil {
				t.Fatal(err)
			}
		}
		// Pods hold the lowest IPs; the cooling ones are the highest, which Trim would take first.
		eni, _ = f.NetworkInterface(eni.ID)
		ips := slices.SortedFunc(slices.Values(eni.SecondaryIPs), func(a, b string) int { return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b)) })
		for i, ip := range ips[:s.used] {
			w.pods[fmt.Sprintf("dev%d-pod%d", device, i)] = netip.MustParseAddr(ip)
		}
		for i, ip := range ips[len(ips)-s.cooling:] {
			w.pods[fmt.Sprintf("dev%d-cooling%d", device, i)] = netip.MustParseAddr(ip)
		}
	}
	w.pool = NewPool(f, &fakeLinks{}, PoolConfig{InstanceID: trimInstance, NodeName: "node-1", MaxENIs: 3, IPsPerENI: 3,
		Targets: targets, Cooldown: 30 * time.Second, Clock: w.clk})
	inUse := map[netip.Addr]string{}
	for key, ip := range w.pods {
		inUse[ip] = key
	}
	if err := w.pool.Sync(ctx, inUse); err != nil {
		t.Fatal(err)
	}
	w.advance(time.Minute) // what Sync found is old enough to give back
	for device, s := range state {
		for i := range s.cooling {
			key := fmt.Sprintf("dev%d-cooling%d", device, i)
			w.cooling = append(w.cooling, w.pods[key])
			w.release(key)
		}
	}
	return w
}

func (w *trimWorld) advance(d time.Duration) { w.clk.SetTime(w.clk.Now().Add(d)) }

// allocate and release do what the allocator does for a pod's ADD and DEL.
func (w *trimWorld) allocate(t *testing.T, key string) Lease {
	t.Helper()
	l, err := w.pool.Allocate(key)
	if err != nil {
		t.Fatalf("Allocate %s: %v (stats %+v)", key, err, w.pool.Stats())
	}
	w.pods[key] = l.IP
	if err := w.pool.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	return l
}

func (w *trimWorld) release(key string) {
	w.pool.Release(w.pods[key])
	delete(w.pods, key)
}

// attached returns the instance's ENIs by device index, as EC2 has them.
func (w *trimWorld) attached(t *testing.T) []cloud.NetworkInterface {
	t.Helper()
	enis, err := w.ec2.DescribeNetworkInterfaces(t.Context(), cloud.NetworkInterfaceFilter{InstanceID: trimInstance})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(enis, func(a, b cloud.NetworkInterface) int { return a.DeviceIndex - b.DeviceIndex })
	return enis
}

// ipCounts returns the secondary IPs of each attached ENI, by device index.
func (w *trimWorld) ipCounts(t *testing.T) []int {
	t.Helper()
	var out []int
	for _, n := range w.attached(t) {
		out = append(out, len(n.SecondaryIPs))
	}
	return out
}

// mutations returns the mutating calls recorded since the call log had n entries.
func (w *trimWorld) mutations(n int) []string {
	var out []string
	for _, c := range w.ec2.CallLog()[n:] {
		if !strings.HasPrefix(c.Action, "Describe") {
			out = append(out, c.Action)
		}
	}
	return out
}

const (
	assignIPs   = fake.ActionAssignPrivateIPAddresses
	unassignIPs = fake.ActionUnassignPrivateIPAddresses
	createENI   = fake.ActionCreateNetworkInterface
	attachENI   = fake.ActionAttachNetworkInterface
	detachENI   = fake.ActionDetachNetworkInterface
	deleteENI   = fake.ActionDeleteNetworkInterface
	modifyENI   = "ModifyNetworkInterfaceAttribute" // delete-on-termination
)

// TestPoolTargets: what one Reconcile grows and trims, given each ENI's assigned, used and
// cooling IPs. The AWS rows are those of amazon-vpc-cni-k8s docs/eni-and-ip-target.md.
func TestPoolTargets(t *testing.T) {
	addENI := []string{createENI, attachENI, modifyENI}
	tests := map[string]struct {
		targets   Targets
		state     []eniState
		wantIPs   []int // secondary IPs per attached ENI afterwards, by device index
		wantCalls []string
	}{
		"ENI target: a fresh node fills its primary ENI (AWS row 1)": {Targets{WarmENIs: 1}, []eniState{{}}, []int{3}, []string{assignIPs}},
		"ENI target: a pod on a full primary brings a full ENI":      {Targets{WarmENIs: 1}, []eniState{{ips: 3, used: 1}}, []int{3, 3}, addENI},
		"ENI target: an unused ENI above the target goes":            {Targets{WarmENIs: 1}, []eniState{{ips: 3}, {ips: 3}}, []int{3}, []string{detachENI, deleteENI}},
		"ENI target: the free ENI the target needs stays":            {Targets{WarmENIs: 1}, []eniState{{ips: 3, used: 3}, {ips: 3}}, []int{3, 3}, nil},
		"ENI target: no IP goes alone":                               {Targets{WarmENIs: 1}, []eniState{{ips: 3}, {ips: 3, used: 1}}, []int{3, 3}, nil},
		"ENI target: a cooling IP holds its ENI":                     {Targets{WarmENIs: 1}, []eniState{{ips: 3}, {ips: 3, cooling: 1}}, []int{3, 3}, nil},
		"ENI target 0: the last free IPs stay":                       {Targets{}, []eniState{{ips: 3, used: 3}, {ips: 3}}, []int{3, 3}, nil},
		"IP targets 2/5: a fresh node (AWS: 2,3)":                    {Targets{WarmIPs: 2, MinimumIPs: 5}, []eniState{{}}, []int{3, 2}, append([]string{assignIPs}, addENI...)},
		"IP targets 2/5: nine pods gone (AWS: 0 pods)": {Targets{WarmIPs: 2, MinimumIPs: 5}, []eniState{{ips: 3}, {ips: 3}, {ips: 3}},
			[]int{3, 2}, []string{detachENI, deleteENI, unassignIPs}},
		"IP targets 2/5: five pods, at the targets (AWS: 3,3,1)": {Targets{WarmIPs: 2, MinimumIPs: 5},
			[]eniState{{ips: 3, used: 3}, {ips: 3, used: 2}, {ips: 1}}, []int{3, 3, 1}, nil},
		"IP targets 1/1: five pods (AWS: 3,3)":                    {Targets{WarmIPs: 1, MinimumIPs: 1}, []eniState{{ips: 3, used: 3}, {ips: 2, used: 2}}, []int{3, 3}, []string{assignIPs}},
		"IP targets: from the highest ENI down":                   {Targets{WarmIPs: 2}, []eniState{{ips: 3}, {ips: 3, used: 1}}, []int{2, 1}, []string{unassignIPs, unassignIPs}},
		"IP targets: cooling IPs are neither warm nor given back": {Targets{WarmIPs: 1}, []eniState{{ips: 3, cooling: 2}}, []int{3}, nil},
		"IP targets: the free IPs go, not the cooling one":        {Targets{MinimumIPs: 1}, []eniState{{ips: 3, cooling: 1}}, []int{1}, []string{unassignIPs}},
		"IP targets: the primary ENI gives IPs, never itself":     {Targets{WarmIPs: 1}, []eniState{{ips: 3}}, []int{1}, []string{unassignIPs}},
		"IP targets: an ENI the agent did not create stays attached": {Targets{WarmIPs: 1}, []eniState{{ips: 3}, {ips: 3, notOurs: true}},
			[]int{1, 0}, []string{unassignIPs, unassignIPs}},
		"IP targets: the trunk is not the pool's":   {Targets{WarmIPs: 1}, []eniState{{ips: 3}, {trunk: true}}, []int{1, 0}, []string{unassignIPs}},
		"minimum alone caps the node (as AWS's)":    {Targets{MinimumIPs: 5}, []eniState{{ips: 3, used: 3}, {ips: 2, used: 2}}, []int{3, 2}, nil},
		"IP targets on a full node ask for nothing": {Targets{WarmIPs: 2}, []eniState{{ips: 3, used: 3}, {ips: 3, used: 3}, {ips: 3, used: 2}}, []int{3, 3, 3}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newTrimWorld(t, tc.targets, tc.state)
			before := len(w.ec2.CallLog())
			if err := w.pool.Reconcile(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := w.ipCounts(t); !slices.Equal(got, tc.wantIPs) {
				t.Errorf("secondary IPs per ENI = %v, want %v", got, tc.wantIPs)
			}
			if got := w.mutations(before); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("EC2 mutations %v, want %v", got, tc.wantCalls)
			}
			w.checkAgrees(t)
		})
	}
}

// checkAgrees fails unless the pool's ENIs and IPs are EC2's, every record's IP is one the
// pool counts as used, no IP is out of reach (leaving), and no IP that was cooling at the
// start was given back.
func (w *trimWorld) checkAgrees(t *testing.T) {
	t.Helper()
	attached := w.attached(t)
	checkPoolAgrees(t, w.pool, attached, w.pods)
	for _, ip := range w.cooling {
		if !slices.ContainsFunc(attached, func(n cloud.NetworkInterface) bool { return slices.Contains(n.SecondaryIPs, ip.String()) }) {
			t.Errorf("%s, released within its cool-down, was given back", ip)
		}
	}
}

func checkPoolAgrees(t *testing.T, p *Pool, attached []cloud.NetworkInterface, pods map[string]netip.Addr) {
	t.Helper()
	ec2 := map[string][]string{}
	for _, n := range attached {
		if n.Type != cloud.InterfaceTypeTrunk {
			ec2[n.ID] = slices.Sorted(slices.Values(n.SecondaryIPs))
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pool := map[string][]string{}
	for _, e := range p.enis {
		ips := append(append([]netip.Addr(nil), e.free...), e.pending...)
		for ip, u := range p.used {
			if u.eni == e {
				ips = append(ips, ip)
			}
		}
		var strs []string
		for _, a := range ips {
			strs = append(strs, a.String())
		}
		pool[e.id] = slices.Sorted(slices.Values(strs))
		if len(e.leaving) > 0 || e.assigned != len(ips) {
			t.Errorf("pool ENI %s: %d assigned, %d known, leaving %v", e.id, e.assigned, len(ips), e.leaving)
		}
	}
	if fmt.Sprint(pool) != fmt.Sprint(ec2) {
		t.Errorf("the pool holds %v, EC2 has %v", pool, ec2)
	}
	for key, ip := range pods {
		if u, ok := p.used[ip]; !ok || u.key != key || !slices.Contains(p.enis, u.eni) {
			t.Errorf("pod %s holds %s, which the pool does not count as its on one of its ENIs", key, ip)
		}
	}
}

// TestTrimPaces: a burst's IPs are not given back while the ENI that got them is younger than
// MinAge, nor while they cool down; then what is above the target goes at once, and the pool
// does not grow back. Two trims are TrimInterval apart.
func TestTrimPaces(t *testing.T) {
	w := newTrimWorld(t, Targets{WarmIPs: 1}, []eniState{{}})
	w.pool.cfg.Cooldown = 10 * time.Second
	ctx := t.Context()
	if err := w.pool.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 4 { // the primary's 3, then a new ENI with 2: one used, one warm
		w.allocate(t, fmt.Sprintf("burst-%d", i))
	}
	if got := w.ipCounts(t); !slices.Equal(got, []int{3, 2}) {
		t.Fatalf("after the burst: %v, want [3 2]", got)
	}
	w.advance(5 * time.Second)
	for i := range 3 {
		w.release(fmt.Sprintf("burst-%d", i+1))
	}
	mark := len(w.ec2.CallLog())
	for _, step := range []time.Duration{5 * time.Second, 20 * time.Second, 29 * time.Second} { // until 59 s after the burst
		w.advance(step)
		if err := w.pool.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := w.mutations(mark); len(got) > 0 {
		t.Fatalf("EC2 mutations within a minute of the burst: %v", got)
	}

	w.advance(time.Second) // a minute after the burst: the new ENI is empty, the primary holds burst-0 and 2 free IPs
	if err := w.pool.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := w.mutations(mark), []string{detachENI, deleteENI, unassignIPs}; !slices.Equal(got, want) {
		t.Fatalf("EC2 mutations %v, want %v", got, want)
	}
	if got := w.ipCounts(t); !slices.Equal(got, []int{2}) {
		t.Fatalf("after the trim: %v, want [2] (burst-0 and one warm)", got)
	}
	if st := w.pool.Stats(); st.Free != 1 || st.Used != 1 || st.ENIs != 1 || st.Unassigned != 1 || st.DeletedENIs != 1 {
		t.Fatalf("stats %+v, want 1 free, 1 used, 1 ENI, 1 IP unassigned and 1 ENI deleted", st)
	}
	w.checkAgrees(t)

	// burst-0 leaves: its IP is above the target once cooled, but the last trim was 10 s ago.
	w.release("burst-0")
	mark = len(w.ec2.CallLog())
	w.advance(10 * time.Second)
	if err := w.pool.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.mutations(mark); len(got) > 0 {
		t.Fatalf("EC2 mutations 10 s after a trim: %v", got)
	}
	w.advance(20 * time.Second)
	if err := w.pool.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := w.mutations(mark); !slices.Equal(got, []string{unassignIPs}) {
		t.Fatalf("EC2 mutations %v, want one unassign", got)
	}
	if got := w.ipCounts(t); !slices.Equal(got, []int{1}) {
		t.Fatalf("after the second trim: %v, want [1]", got)
	}
	w.checkAgrees(t)
}

// hookEC2 runs during before an UnassignPrivateIPs reaches EC2.
type hookEC2 struct {
	*fake.EC2
	during func(ips []string)
}

func (h *hookEC2) UnassignPrivateIPs(ctx context.Context, eniID string, ips []string) error {
	if h.during != nil {
		h.during(ips)
	}
	return h.EC2.UnassignPrivateIPs(ctx, eniID, ips)
}

// TestTrimUnassignFailures: an unassign whose outcome is unknown loses no IP and hands none
// out twice: the pool asks EC2 which IPs the ENI still has; until it knows, they are out of
// reach. A pod asking for an IP meanwhile gets one that stays.
func TestTrimUnassignFailures(t *testing.T) {
	tests := map[string]struct {
		fault    func(f *fake.EC2)
		wantFree int // free IPs right after the failed Trim
		wantIPs  int // the primary's secondary IPs in EC2 then
		leftOpen bool
	}{
		"refused (throttled)": {func(f *fake.EC2) { f.NextError(unassignIPs, fake.Throttled(unassignIPs)) }, 2, 3, false},
		"done, answer lost":   {func(f *fake.EC2) { f.NextErrorAfterEffect(unassignIPs, fake.Unavailable(unassignIPs)) }, 0, 1, false},
		"done, answer lost, EC2 not telling": {func(f *fake.EC2) {
			f.NextErrorAfterEffect(unassignIPs, fake.Unavailable(unassignIPs))
			f.NextError(fake.ActionDescribeNetworkInterfaces, fake.Throttled(fake.ActionDescribeNetworkInterfaces))
		}, 0, 1, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := newTrimWorld(t, Targets{WarmIPs: 1}, []eniState{{ips: 3}})
			h := &hookEC2{EC2: w.ec2}
			w.pool.ec2 = h
			var during Lease
			h.during = func(ips []string) {
				h.during = nil
				var err error
				if during, err = w.pool.Allocate("during"); err != nil || slices.Contains(ips, during.IP.String()) {
					t.Errorf("Allocate during the unassign of %v = %+v, %v; want another IP", ips, during, err)
				}
				if l, err := w.pool.Allocate("during-2"); !errors.Is(err, ErrNoFreeIP) {
					t.Errorf("second Allocate during the unassign = %+v, %v; want ErrNoFreeIP", l, err)
				}
				w.pods["during"] = during.IP
			}
			tc.fault(w.ec2)
			if err := w.pool.Trim(t.Context()); err == nil {
				t.Fatal("Trim reported no error")
			}
			if st := w.pool.Stats(); st.Free != tc.wantFree || st.Used != 1 {
				t.Fatalf("after the failed trim: %+v, want %d free, 1 used", st, tc.wantFree)
			}
			if got := w.ipCounts(t); got[0] != tc.wantIPs {
				t.Fatalf("EC2 has %d secondary IPs, want %d", got[0], tc.wantIPs)
			}
			if !tc.leftOpen {
				w.checkAgrees(t)
			}
			w.release("during")
			w.advance(time.Minute)
			if err := w.pool.Trim(t.Context()); err != nil {
				t.Fatal(err)
			}
			if st := w.pool.Stats(); st.Free != 1 || st.Unassigned != 2 {
				t.Errorf("after the next trim: %+v, want the target (1 free) and the 2 IPs counted as unassigned", st)
			}
			w.checkAgrees(t)
		})
	}
}

// TestTrimRetriesAnENI: an ENI whose delete fails (EC2 still detaching it) has left the pool
// (no pod gets its IPs) and goes at the next Trim; one whose detach fails likewise; an agent
// that stops in between deletes it when it starts again.
func TestTrimRetriesAnENI(t *testing.T) {
	for _, step := range []string{detachENI, deleteENI} {
		t.Run(step+" fails", func(t *testing.T) {
			w := newTrimWorld(t, Targets{WarmENIs: 1}, []eniState{{ips: 3}, {ips: 3}})
			doomed := w.attached(t)[1].ID
			w.ec2.NextError(step, &cloud.APIError{Op: step, Code: "InvalidNetworkInterface.InUse", Message: "injected", Kind: cloud.ErrConflict})
			if err := w.pool.Trim(t.Context()); err == nil || !strings.Contains(err.Error(), doomed) {
				t.Fatalf("Trim = %v, want an error naming %s", err, doomed)
			}
			if st := w.pool.Stats(); st.ENIs != 1 || st.Free != 3 || st.DeletedENIs != 0 {
				t.Fatalf("after the failure: %+v, want the primary's 3 free IPs only, nothing deleted yet", st)
			}
			if err := w.pool.Trim(t.Context()); err != nil { // retried at once: TrimInterval paces new trims only
				t.Fatal(err)
			}
			if _, ok := w.ec2.NetworkInterface(doomed); ok || w.pool.Stats().DeletedENIs != 1 {
				t.Fatalf("ENI %s still exists (stats %+v)", doomed, w.pool.Stats())
			}
			w.checkAgrees(t)
		})
	}
	t.Run("restart after the detach", func(t *testing.T) {
		w := newTrimWorld(t, Targets{WarmENIs: 1}, []eniState{{ips: 3}, {ips: 3}})
		doomed := w.attached(t)[1].ID
		w.ec2.NextError(deleteENI, &cloud.APIError{Op: deleteENI, Code: "InvalidNetworkInterface.InUse", Message: "injected", Kind: cloud.ErrConflict})
		_ = w.pool.Trim(t.Context()) // fails; the agent stops before the next Trim
		again := NewPool(w.ec2, &fakeLinks{}, w.pool.cfg)
		inUse := map[netip.Addr]string{}
		for key, ip := range w.pods {
			inUse[ip] = key
		}
		if err := again.Sync(t.Context(), inUse); err != nil {
			t.Fatal(err)
		}
		if _, ok := w.ec2.NetworkInterface(doomed); ok {
			t.Fatalf("ENI %s, detached by the last run, survived the restart", doomed)
		}
		checkPoolAgrees(t, again, w.attached(t), w.pods)
	})
}

// TestTrimRestartAfterUnassign: the agent stops right after EC2 unassigned the IPs, before
// the pool forgot them. The next start knows from EC2 and the records what is left.
func TestTrimRestartAfterUnassign(t *testing.T) {
	w := newTrimWorld(t, Targets{WarmIPs: 1}, []eniState{{ips: 3, used: 1}, {ips: 3, used: 1}})
	h := &hookEC2{EC2: w.ec2}
	w.pool.ec2 = h
	var stopped []string
	h.during = func(ips []string) { stopped = append(stopped, ips...) }
	if err := w.pool.Trim(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(stopped) != 3 {
		t.Fatalf("unassigned %v, want 3 IPs (4 free, 1 kept warm)", stopped)
	}
	// The new run: a pool from EC2 and the records, as at any start.
	again := NewPool(w.ec2, &fakeLinks{}, w.pool.cfg)
	inUse := map[netip.Addr]string{}
	for key, ip := range w.pods {
		inUse[ip] = key
	}
	if err := again.Sync(t.Context(), inUse); err != nil {
		t.Fatal(err)
	}
	checkPoolAgrees(t, again, w.attached(t), w.pods)
	if st := again.Stats(); st.Used != 2 || st.Free != 1 {
		t.Fatalf("restarted pool %+v, want the 2 pods' IPs used and 1 free", st)
	}
	for i := 0; ; i++ {
		l, err := again.Allocate(fmt.Sprintf("new-%d", i))
		if err != nil {
			break
		}
		if slices.Contains(stopped, l.IP.String()) {
			t.Errorf("the restarted pool handed out %s, which EC2 no longer assigns", l.IP)
		}
	}
}

// TestPoolGrowsAgainAfterATrim: a node that was full gets an ENI slot back when Trim deletes
// an ENI, and the pool attaches a new ENI when pods need it again.
func TestPoolGrowsAgainAfterATrim(t *testing.T) {
	w := newTrimWorld(t, Targets{WarmIPs: 1}, []eniState{{ips: 3, used: 3}, {ips: 3, used: 3}, {ips: 3, used: 3}})
	if err := w.pool.Reconcile(t.Context()); err != nil { // short of the warm IP, no room: full
		t.Fatal(err)
	}
	for key, ip := range w.pods {
		if !strings.HasPrefix(key, "dev0-") {
			w.pool.Release(ip)
			delete(w.pods, key)
		}
	}
	w.advance(time.Minute)
	if err := w.pool.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := w.ipCounts(t); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("after the trim: %v, want [3 1]", got)
	}
	for i := range 3 {
		w.allocate(t, fmt.Sprintf("again-%d", i))
	}
	if got := w.ipCounts(t); !slices.Equal(got, []int{3, 3, 1}) {
		t.Fatalf("after 3 more pods: %v, want [3 3 1]: a new ENI for the warm IP", got)
	}
	w.checkAgrees(t)
}
