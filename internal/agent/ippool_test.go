package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/podsg/podsg/internal/cloud"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/cloud/instancetypes"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// The pool runs against the local VPC's API through the real EC2 client: the API enforces
// EC2's per-type ENI and IP limits, device indexes and tags, which is what the pool must
// respect. Only the node's links are faked.

type poolWorld struct {
	env      *vpctest.Env
	ec2      *cloudec2.Client
	subnet   string
	group    string
	instance string
	links    *fakeLinks
}

func newPoolWorld(t *testing.T, instanceType string) *poolWorld {
	t.Helper()
	env := vpctest.Start(t, vpctest.Options{})
	c := env.CloudClient(t, nil)
	vpc := env.NewVPC(t, "10.0.0.0/16")
	sn := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	w := &poolWorld{env: env, ec2: c, subnet: *sn.SubnetId, group: env.NewGroup(t, *vpc.VpcId, "nodes"), links: &fakeLinks{}}
	out, err := env.Client.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"),
		InstanceType: types.InstanceType(instanceType), SubnetId: sn.SubnetId, SecurityGroupIds: []string{w.group},
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	w.instance = *out.Instances[0].InstanceId
	return w
}

func (w *poolWorld) pool(t *testing.T, ec2 PoolEC2, instanceType string, warm int, reserveTrunk bool) *Pool {
	t.Helper()
	typ, ok := instancetypes.Lookup(instanceType)
	if !ok {
		t.Fatalf("unknown type %s", instanceType)
	}
	return NewPool(ec2, w.links, PoolConfig{InstanceID: w.instance, NodeName: "node-1", MaxENIs: typ.MaxENIs,
		ReserveTrunkSlot: reserveTrunk, IPsPerENI: typ.IPv4PerENI - 1, Targets: Targets{WarmIPs: warm}})
}

// attached returns the instance's ENIs by device index.
func (w *poolWorld) attached(t *testing.T) []cloud.NetworkInterface {
	t.Helper()
	enis, err := w.ec2.DescribeNetworkInterfaces(t.Context(), cloud.NetworkInterfaceFilter{InstanceID: w.instance})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(enis, func(a, b cloud.NetworkInterface) int { return a.DeviceIndex - b.DeviceIndex })
	return enis
}

type fakeLinks struct {
	mu    sync.Mutex
	setup []ENILink
	fail  error // returned by Setup while set
}

func (f *fakeLinks) Setup(_ context.Context, l ENILink) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	f.setup = append(f.setup, l)
	return fmt.Sprintf("eth%d", l.Table-1), nil
}

func (f *fakeLinks) tables() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, l := range f.setup {
		out = append(out, l.Table)
	}
	return out
}

func allocateN(t *testing.T, p *Pool, prefix string, n int) []Lease {
	t.Helper()
	var out []Lease
	for i := range n {
		l, err := p.Allocate(fmt.Sprintf("%s-%d", prefix, i))
		if err != nil {
			t.Fatalf("Allocate %s-%d: %v (stats %+v)", prefix, i, err, p.Stats())
		}
		out = append(out, l)
	}
	return out
}

// TestPoolGrowsAcrossENIs: a t3.small holds 3 ENIs of 3 secondary IPs. Pods fill the primary
// ENI, then each new ENI; every ENI beyond the primary gets its own route table (device + 1)
// and is set up on the node before its IPs are handed out; the tenth pod finds the node full.
func TestPoolGrowsAcrossENIs(t *testing.T) {
	w := newPoolWorld(t, "t3.small")
	p := w.pool(t, w.ec2, "t3.small", 3, false)
	if err := p.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	var leases []Lease
	for round := range 3 {
		if err := p.Fill(t.Context()); err != nil {
			t.Fatalf("Fill %d: %v", round, err)
		}
		got := allocateN(t, p, fmt.Sprintf("round%d", round), 3)
		for _, l := range got {
			if want := map[int]int{0: 0, 1: 2, 2: 3}[round]; l.Table != want {
				t.Errorf("round %d: lease %+v, want table %d", round, l, want)
			}
		}
		leases = append(leases, got...)
	}
	if err := p.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Allocate("tenth"); !errors.Is(err, errNodeFull) {
		t.Fatalf("tenth Allocate: %v, want errNodeFull", err)
	}

	enis := w.attached(t)
	if len(enis) != 3 {
		t.Fatalf("%d ENIs attached, want 3 (the type's limit)", len(enis))
	}
	seen := map[netip.Addr]bool{}
	for _, l := range leases {
		i := slices.IndexFunc(enis, func(n cloud.NetworkInterface) bool { return n.ID == l.ENIID })
		if i < 0 || !slices.Contains(enis[i].SecondaryIPs, l.IP.String()) || seen[l.IP] {
			t.Errorf("lease %+v: not a unique secondary IP of an attached ENI", l)
		}
		seen[l.IP] = true
	}
	for _, n := range enis[1:] {
		if n.SubnetID != w.subnet || !slices.Equal(n.SecurityGroups, []string{w.group}) || n.Tags[cloud.TagInstance] != w.instance {
			t.Errorf("pool ENI %s: subnet %s groups %v tags %v; want the primary's subnet and groups, tagged", n.ID, n.SubnetID, n.SecurityGroups, n.Tags)
		}
		raw, err := w.env.Client.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{n.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if a := raw.NetworkInterfaces[0].Attachment; a == nil || !aws.ToBool(a.DeleteOnTermination) {
			t.Errorf("pool ENI %s is not delete-on-termination: it would outlive its instance", n.ID)
		}
	}
	if got := w.links.tables(); !slices.Equal(got, []int{2, 3}) {
		t.Errorf("links set up for tables %v, want [2 3]", got)
	}

	// A released IP is reused, and a retried allocation gets its first answer.
	p.Release(leases[4].IP)
	again, err := p.Allocate("again")
	if err != nil || again != leases[4] {
		t.Fatalf("Allocate after Release = %+v, %v; want %+v", again, err, leases[4])
	}
	if retry, err := p.Allocate("again"); err != nil || retry != again {
		t.Fatalf("retried Allocate = %+v, %v; want %+v", retry, err, again)
	}
}

// TestPoolKeepsASlotForTheTrunk: with pod ENIs on, an m5.large (3 ENIs) gives the pool two,
// so that podsg-controller can still attach the trunk, whichever of them comes first.
func TestPoolKeepsASlotForTheTrunk(t *testing.T) {
	w := newPoolWorld(t, "m5.large")
	p := w.pool(t, w.ec2, "m5.large", 20, true)
	if err := p.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.ENIs != 2 || st.Free != 18 {
		t.Fatalf("stats %+v, want 2 ENIs with 18 free IPs", st)
	}
	trunk := w.env.NewENI(t, w.subnet, types.NetworkInterfaceCreationTypeTrunk)
	w.env.Attach(t, *trunk.NetworkInterfaceId, w.instance, 2)
}

// raceEC2 attaches another ENI at device index 1 just before the pool's first attach, as
// podsg-controller attaching the trunk at the same moment would.
type raceEC2 struct {
	*cloudec2.Client
	once  sync.Once
	other func()
}

func (r *raceEC2) AttachNetworkInterface(ctx context.Context, eniID, instanceID string, index int) (string, error) {
	r.once.Do(r.other)
	return r.Client.AttachNetworkInterface(ctx, eniID, instanceID, index)
}

func TestPoolLosesTheDeviceIndexRace(t *testing.T) {
	w := newPoolWorld(t, "m5.large")
	trunk := w.env.NewENI(t, w.subnet, types.NetworkInterfaceCreationTypeTrunk)
	ec2 := &raceEC2{Client: w.ec2, other: func() { w.env.Attach(t, *trunk.NetworkInterfaceId, w.instance, 1) }}
	p := w.pool(t, ec2, "m5.large", 10, true)
	if err := p.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	enis := w.attached(t)
	if len(enis) != 3 || enis[1].ID != *trunk.NetworkInterfaceId || enis[2].DeviceIndex != 2 || enis[2].Type != cloud.InterfaceTypeInterface {
		t.Fatalf("attached %+v; want primary, the trunk at 1, the pool's ENI at 2", enis)
	}
	if got := w.links.tables(); !slices.Equal(got, []int{3}) {
		t.Errorf("links set up for tables %v, want [3]", got)
	}
}

// failAttach fails every attach.
type failAttach struct{ *cloudec2.Client }

func (failAttach) AttachNetworkInterface(context.Context, string, string, int) (string, error) {
	return "", &cloud.APIError{Op: "AttachNetworkInterface", Code: "InternalError", Message: "injected", Kind: cloud.ErrUnavailable}
}

// TestPoolLeavesNoENIBehind: an attach that fails deletes the ENI it was for; an ENI left by a
// crash between create and attach is deleted at the next start.
func TestPoolLeavesNoENIBehind(t *testing.T) {
	w := newPoolWorld(t, "t3.small")
	p := w.pool(t, failAttach{w.ec2}, "t3.small", 5, false)
	if err := p.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Fill(t.Context()); err == nil {
		t.Fatal("Fill succeeded with every attach failing")
	}
	// The crash: an ENI created with the pool's tag, never attached.
	if _, err := w.ec2.CreateNetworkInterface(t.Context(), cloud.CreateNetworkInterfaceInput{SubnetID: w.subnet,
		Tags: map[string]string{cloud.TagInstance: w.instance}}); err != nil {
		t.Fatal(err)
	}
	if err := w.pool(t, w.ec2, "t3.small", 5, false).Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	left, err := w.ec2.DescribeNetworkInterfaces(t.Context(), cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagInstance: w.instance}})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("%d pool ENIs left unattached: %+v", len(left), left)
	}
}

// TestPoolWaitsForTheLinkAndResyncs: IPs of an ENI whose interface is not set up are not handed out;
// the next Fill sets it up and releases them. A restart finds the ENIs and the pods on them.
func TestPoolWaitsForTheLinkAndResyncs(t *testing.T) {
	w := newPoolWorld(t, "t3.small")
	p := w.pool(t, w.ec2, "t3.small", 3, false)
	if err := p.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := allocateN(t, p, "primary", 3)
	w.links.fail = errors.New("no such link yet")
	if err := p.Fill(t.Context()); err == nil {
		t.Fatal("Fill succeeded while the new ENI's link could not be set up")
	}
	if _, err := p.Allocate("fourth"); !errors.Is(err, ErrNoFreeIP) {
		t.Fatalf("Allocate with the secondary ENI not set up: %v, want ErrNoFreeIP", err)
	}
	w.links.fail = nil
	if err := p.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	fourth, err := p.Allocate("fourth")
	if err != nil || fourth.Table != 2 {
		t.Fatalf("Allocate after the link came up = %+v, %v; want a lease in table 2", fourth, err)
	}

	// Restart: the records say which IPs pods hold.
	inUse := map[netip.Addr]string{fourth.IP: "fourth"}
	for i, l := range first {
		inUse[l.IP] = fmt.Sprintf("primary-%d", i)
	}
	w.links.setup = nil
	q := w.pool(t, w.ec2, "t3.small", 3, false)
	if err := q.Sync(t.Context(), inUse); err != nil {
		t.Fatal(err)
	}
	if st := q.Stats(); st.ENIs != 2 || st.Used != 4 || st.Free != 2 {
		t.Fatalf("after restart: %+v, want 2 ENIs, 4 used, 2 free", st)
	}
	if got := w.links.tables(); !slices.Equal(got, []int{2}) {
		t.Errorf("restart set up tables %v, want [2]", got)
	}
	if again, err := q.Allocate("fourth"); err != nil || again != fourth {
		t.Fatalf("restarted pool gave fourth %+v, %v; want its record's %+v", again, err, fourth)
	}
}

// TestPoolCoolsReleasedIPs: a released IP rests for the cooldown — the next pod gets another
// one, or waits — and Fill does not count it as warm.
func TestPoolCoolsReleasedIPs(t *testing.T) {
	w := newPoolWorld(t, "t3.small")
	clk := clocktesting.NewFakePassiveClock(time.Now())
	p := NewPool(w.ec2, w.links, PoolConfig{InstanceID: w.instance, NodeName: "node-1", MaxENIs: 3, IPsPerENI: 3, Targets: Targets{WarmIPs: 2},
		Cooldown: 30 * time.Second, Clock: clk})
	if err := p.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := allocateN(t, p, "pod", 2)
	p.Release(first[0].IP)
	if l, err := p.Allocate("next"); !errors.Is(err, ErrNoFreeIP) {
		t.Fatalf("Allocate with only a cooling IP free = %+v, %v; want ErrNoFreeIP", l, err)
	}
	if st := p.Stats(); st.Free != 0 || st.Cooling != 1 {
		t.Fatalf("stats %+v, want 0 free and 1 cooling", st)
	}
	if err := p.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	next, err := p.Allocate("next")
	if err != nil || next.IP == first[0].IP || next.Table != 0 {
		t.Fatalf("Allocate after Fill = %+v, %v; want a new IP of the primary ENI, not the cooling %s", next, err, first[0].IP)
	}
	clk.SetTime(clk.Now().Add(30 * time.Second))
	if again, err := p.Allocate("later"); err != nil || again.IP != first[0].IP {
		t.Fatalf("Allocate after the cooldown = %+v, %v; want %s back", again, err, first[0].IP)
	}
}

// TestPoolTrimsToItsTargets: with IP targets (2 warm, 4 at least) a t3.small's pods fill all
// three ENIs; when all but one leave, the pool waits out the cool-down and MinAge, then gives
// back an empty ENI (detached and deleted) and the free IPs above the targets, and stays
// there. At every step EC2's view of the instance's ENIs is the pool's.
func TestPoolTrimsToItsTargets(t *testing.T) {
	w := newPoolWorld(t, "t3.small")
	ctx := t.Context()
	clk := clocktesting.NewFakePassiveClock(time.Now())
	p := NewPool(w.ec2, w.links, PoolConfig{InstanceID: w.instance, NodeName: "node-1", MaxENIs: 3, IPsPerENI: 3,
		Targets: Targets{WarmIPs: 2, MinimumIPs: 4}, Cooldown: 30 * time.Second, Clock: clk})
	if err := p.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := secondaryIPs(w.attached(t)); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("a fresh node holds %v secondary IPs per ENI, want [3 1] (the minimum, 4)", got)
	}
	pods := map[string]netip.Addr{}
	for i := range 7 {
		key := fmt.Sprintf("pod-%d", i)
		l, err := p.Allocate(key)
		if err != nil {
			t.Fatalf("Allocate %s: %v", key, err)
		}
		pods[key] = l.IP
		if err := p.Fill(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := secondaryIPs(w.attached(t)); !slices.Equal(got, []int{3, 3, 3}) {
		t.Fatalf("7 pods and 2 warm: %v secondary IPs per ENI, want [3 3 3]", got)
	}
	checkPoolAgrees(t, p, w.attached(t), pods)

	for i := 1; i < 7; i++ {
		key := fmt.Sprintf("pod-%d", i)
		p.Release(pods[key])
		delete(pods, key)
	}
	clk.SetTime(clk.Now().Add(30 * time.Second)) // cooled down, but the ENIs grew less than MinAge ago
	if err := p.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := secondaryIPs(w.attached(t)); !slices.Equal(got, []int{3, 3, 3}) {
		t.Fatalf("30 s after the pods: %v, want [3 3 3] still", got)
	}
	clk.SetTime(clk.Now().Add(30 * time.Second))
	if err := p.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	// pod-0 on the primary ENI; the last ENI went whole, the second kept 1 IP: 4 in all, 3 free.
	if got := secondaryIPs(w.attached(t)); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("after the trim: %v secondary IPs per ENI, want [3 1]", got)
	}
	checkPoolAgrees(t, p, w.attached(t), pods)
	if st := p.Stats(); st.Free != 3 || st.Used != 1 || st.ENIs != 2 || st.Unassigned != 2 || st.DeletedENIs != 1 {
		t.Fatalf("stats %+v, want 3 free, 1 used, 2 ENIs, 2 IPs unassigned, 1 ENI deleted", st)
	}
	left, err := w.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagInstance: w.instance}})
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 {
		t.Fatalf("%d ENIs the pool created still exist, want 1 (the other one deleted, not just detached): %+v", len(left), left)
	}

	clk.SetTime(clk.Now().Add(time.Minute)) // at the targets: nothing more goes
	if err := p.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := secondaryIPs(w.attached(t)); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("a minute later: %v, want [3 1] still", got)
	}
	checkPoolAgrees(t, p, w.attached(t), pods)
}

func secondaryIPs(enis []cloud.NetworkInterface) []int {
	var out []int
	for _, n := range enis {
		out = append(out, len(n.SecondaryIPs))
	}
	return out
}
