package warm_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/worldtest"
)

// The warmer, driven pass by pass on worldtest: warm pools per policy and node, made only
// from spare budget, up to the trunk's room, resumed after a lost response, kept past the idle
// TTL; and the pods that take them.

func warmCount(t *testing.T, w *worldtest.World, node string, groups []string) int {
	t.Helper()
	n := 0
	for _, b := range w.Store.Branches(node) {
		if b.Idle() && b.Warm && inventory.SameGroups(b.Groups, groups) {
			n++
		}
	}
	return n
}

func TestWarmTargets(t *testing.T) {
	two, zero := int32(2), int32(0)
	tests := map[string]struct {
		defaultTarget int
		policies      map[string]*int32 // policy name → its warmBranchesPerNode
		want          int               // warm branches of worldtest.Groups per node
	}{
		"no target":                          {policies: map[string]*int32{"p": nil}},
		"the policy's":                       {policies: map[string]*int32{"p": &two}, want: 2},
		"the default":                        {defaultTarget: 1, policies: map[string]*int32{"p": nil}, want: 1},
		"a policy's 0 overrides the default": {defaultTarget: 1, policies: map[string]*int32{"p": &zero}},
		"the largest of the same groups":     {policies: map[string]*int32{"p": nil, "q": &two}, defaultTarget: 1, want: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := worldtest.NewWith(t, worldtest.Options{WarmDefault: tc.defaultTarget})
			w.AddNode("n1")
			w.AddNode("n2")
			for p, n := range tc.policies {
				w.AddPolicy(p, worldtest.Groups, n)
			}
			w.Warm()
			w.Warm() // a second pass changes nothing
			for _, node := range []string{"n1", "n2"} {
				if got := warmCount(t, w, node, worldtest.Groups); got != tc.want {
					t.Errorf("node %s has %d warm branches, want %d", node, got, tc.want)
				}
				w.ReconcileNode(node)
				w.RequireCapacity(node, "4") // warm branches are free capacity
			}
			if n := w.EC2.Calls(fake.ActionCreateNetworkInterface); n != 2+2*tc.want { // the trunks, the warm branches
				t.Errorf("%d creates, want %d", n, 2+2*tc.want)
			}
		})
	}
}

// TestWarmBranchTaken: a pod with the warm groups starts with no EC2 call; the next pass makes
// another.
func TestWarmBranchTaken(t *testing.T) {
	one := int32(1)
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddPolicy("p", worldtest.Groups, &one)
	w.Warm()
	warm := w.Store.Branches("n1")[0]
	before := w.Mutations()
	w.NewPod("web", "n1")
	w.ReconcilePod("web")
	if got := w.Annotated("web"); got.ENIID != warm.ENIID || got.VLANID != warm.VLAN {
		t.Fatalf("the pod got %+v, want the warm branch %s", got, warm.ENIID)
	}
	if n := w.Mutations() - before; n != 0 {
		t.Fatalf("%d EC2 mutations for a pod with a warm branch, want 0", n)
	}
	w.Warm()
	if got := warmCount(t, w, "n1", worldtest.Groups); got != 1 {
		t.Fatalf("%d warm branches after the pod took one and a pass, want the target 1", got)
	}
}

// TestWarmOnlyFromSpareBudget: no call while the budget has none to spare for warming.
func TestWarmOnlyFromSpareBudget(t *testing.T) {
	two := int32(2)
	budget := &spare{}
	w := worldtest.NewWith(t, worldtest.Options{Budget: budget})
	w.AddNode("n1")
	w.AddPolicy("p", worldtest.Groups, &two)
	before := w.Mutations()
	w.Warm()
	if n := w.Mutations() - before; n != 0 || warmCount(t, w, "n1", worldtest.Groups) != 0 {
		t.Fatalf("%d mutations without spare budget, want none", n)
	}
	if !slices.Contains(budget.asked, cloud.PurposeWarm) {
		t.Fatalf("the warmer asked the budget for %v, want warm", budget.asked)
	}
	budget.yes = true
	w.Warm()
	if got := warmCount(t, w, "n1", worldtest.Groups); got != 2 {
		t.Fatalf("%d warm branches once the budget had spare, want 2", got)
	}
}

// TestWarmStopsAtTheTrunksRoom: warming never takes the last slots pods would get.
func TestWarmStopsAtTheTrunksRoom(t *testing.T) {
	ten := int32(10)
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddPod("a", "n1")
	w.AddPolicy("p", worldtest.Groups, &ten)
	w.Warm()
	if u, _ := w.Store.Usage("n1"); u.Warm != worldtest.BranchLimit-1 || u.InUse != 1 {
		t.Fatalf("usage %+v, want the trunk's room warm", u)
	}
	w.ReconcileNode("n1")
	w.RequireCapacity("n1", "4")
	// A pod with other groups takes a warm branch and changes its groups: the trunk is full.
	w.NewPodWithGroups("other", "n1", worldtest.OtherGroups)
	w.ReconcilePod("other")
	if eni := w.ENI(w.Annotated("other").ENIID); !inventory.SameGroups(eni.SecurityGroups, worldtest.OtherGroups) {
		t.Fatalf("the pod's branch carries %v", eni.SecurityGroups)
	}
}

// TestWarmResumesAfterALostResponse: the create's ClientToken finds the same ENI on the next
// pass; a failure retrying will not cure rests the groups.
func TestWarmResumesAfterALostResponse(t *testing.T) {
	one := int32(1)
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddPolicy("p", worldtest.Groups, &one)
	w.EC2.NextErrorAfterEffect(fake.ActionCreateNetworkInterface, fake.Unavailable(fake.ActionCreateNetworkInterface))
	if err := w.Warmer.Warm(t.Context()); err == nil {
		t.Fatal("want the lost response's error")
	}
	w.Warm()
	if branches := w.EC2.NetworkInterfaces(cloud.InterfaceTypeBranch); len(branches) != 1 {
		t.Fatalf("%d branch ENIs, want the one the lost response made", len(branches))
	}
	if warmCount(t, w, "n1", worldtest.Groups) != 1 {
		t.Fatal("the warm branch is not ready")
	}

	w.AddPolicy("q", []string{"sg-0dddddddddddddddd"}, &one) // no such group
	if err := w.Warmer.Warm(t.Context()); err == nil {
		t.Fatal("want the missing group's error")
	}
	creates := w.EC2.Calls(fake.ActionCreateNetworkInterface)
	w.Warm()
	if n := w.EC2.Calls(fake.ActionCreateNetworkInterface); n != creates {
		t.Fatalf("%d creates for a missing group while it rests", n-creates)
	}
	w.Clock.Step(worldtest.RetryAfter)
	if err := w.Warmer.Warm(t.Context()); err == nil {
		t.Fatal("want the missing group's error again after its rest")
	}
}

// TestWarmKeptPastTheIdleTTL: the releaser keeps the warm target of idle branches.
func TestWarmKeptPastTheIdleTTL(t *testing.T) {
	two := int32(2)
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddPolicy("p", worldtest.Groups, &two)
	w.Warm()
	w.Drain()
	if got := warmCount(t, w, "n1", worldtest.Groups); got != 2 {
		t.Fatalf("%d warm branches after the idle TTL, want 2", got)
	}
}

type spare struct {
	yes   bool
	asked []cloud.Purpose
}

func (s *spare) Spare(p cloud.Purpose) bool { s.asked = append(s.asked, p); return s.yes }

// TestWarmResumesAfterARestart: a process that dies after a warm branch's create took effect
// leaves an ENI of the trunk that no association and no pod names. The next incarnation
// adopts it from its tags and associates it instead of creating another: the target is met
// with exactly as many creates as warm branches.
func TestWarmResumesAfterARestart(t *testing.T) {
	two := int32(2)
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddPolicy("p", worldtest.Groups, &two)
	w.EC2.NextErrorAfterEffect(fake.ActionCreateNetworkInterface, fake.Unavailable(fake.ActionCreateNetworkInterface))
	if err := w.Warmer.Warm(t.Context()); err == nil {
		t.Fatal("want the lost response's error")
	}
	creates := w.EC2.Calls(fake.ActionCreateNetworkInterface)
	w.Clock.Step(time.Second) // a new process starts later
	w.Restart()
	w.ReconcileNode("n1")
	w.Warm()
	w.Warm() // a second pass changes nothing
	if n := w.EC2.Calls(fake.ActionCreateNetworkInterface) - creates; n != 1 {
		t.Errorf("%d creates after the restart, want 1: the other warm branch is the adopted one", n)
	}
	if branches := w.EC2.NetworkInterfaces(cloud.InterfaceTypeBranch); len(branches) != 2 {
		t.Errorf("%d branch ENIs, want the target 2", len(branches))
	}
	if got := warmCount(t, w, "n1", worldtest.Groups); got != 2 {
		t.Errorf("%d warm branches, want 2", got)
	}
	w.ReconcileNode("n1")
	w.RequireCapacity("n1", "4")
}

// TestWarmCountsCoolingAfterARestart: the warm branches a restart finds cool down afresh (their
// last pod, if any, is unknown) and are parked after; they count toward the target meanwhile,
// so the next incarnation makes none, and after the cool-down the node has exactly the target.
func TestWarmCountsCoolingAfterARestart(t *testing.T) {
	two := int32(2)
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddPolicy("p", worldtest.Groups, &two)
	w.Warm()
	before := w.Mutations()
	w.Clock.Step(time.Second)
	w.Restart()
	w.ReconcileNode("n1")
	w.Warm()
	if n := w.Mutations() - before; n != 0 {
		t.Errorf("%d EC2 mutations after the restart while the warm branches cool down, want 0", n)
	}
	w.Release(worldtest.Cooldown)
	w.Warm()
	if n := w.Mutations() - before; n != 0 {
		t.Errorf("%d EC2 mutations once they are parked, want 0", n)
	}
	if branches := w.EC2.NetworkInterfaces(cloud.InterfaceTypeBranch); len(branches) != 2 {
		t.Errorf("%d branch ENIs, want the target 2", len(branches))
	}
	idle := 0
	for _, b := range w.Store.Branches("n1") {
		if b.Idle() && inventory.SameGroups(b.Groups, worldtest.Groups) {
			idle++
		}
	}
	if idle != 2 {
		t.Errorf("%d idle branches of the groups after the cool-down, want 2", idle)
	}
}

// TestWarmRepurposesParked: on a trunk full of parked branches the warmer does not wait for
// their idle TTL; it changes the groups of those above their own warm target, with one call
// each and no create.
func TestWarmRepurposesParked(t *testing.T) {
	two, three, four := int32(2), int32(3), int32(4)
	tests := map[string]struct {
		parkedTarget *int32 // the warm target of the parked branches' groups
		want         int    // of them repurposed
	}{
		"no target for the parked groups": {want: 2},
		"only those above their target":   {parkedTarget: &three, want: 1},
		"none within their target":        {parkedTarget: &four, want: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := worldtest.New(t)
			w.AddNode("n1")
			for i := range worldtest.BranchLimit {
				w.AddPod(fmt.Sprint("old-", i), "n1")
			}
			for i := range worldtest.BranchLimit {
				w.DeletePod(fmt.Sprint("old-", i))
				w.ReconcilePod(fmt.Sprint("old-", i))
			}
			w.Release(worldtest.Cooldown)
			w.AddPolicy("parked", worldtest.Groups, tc.parkedTarget)
			w.AddPolicy("warm", worldtest.OtherGroups, &two)
			before := w.Mutations()
			w.Warm()
			w.Warm() // a second pass changes nothing
			if n := w.Mutations() - before; n != tc.want || w.EC2.Calls(fake.ActionModifyNetworkInterfaceAttribute) != tc.want {
				t.Errorf("%d mutations, want %d changes of groups and nothing else", n, tc.want)
			}
			if got := warmCount(t, w, "n1", worldtest.OtherGroups); got != tc.want {
				t.Errorf("%d warm branches of the other groups, want %d", got, tc.want)
			}
			for _, b := range w.Store.Branches("n1") {
				if eni := w.ENI(b.ENIID); !inventory.SameGroups(eni.SecurityGroups, b.Groups) {
					t.Errorf("branch %s carries %v in EC2, %v in the store", b.ENIID, eni.SecurityGroups, b.Groups)
				}
			}
			w.ReconcileNode("n1")
			w.RequireCapacity("n1", "4")
		})
	}
}

// TestWarmRepurposeOfAMissingGroup: a change of groups that cannot succeed (a group that does
// not exist) gives the branch back, idle, instead of holding its slot in warming for ever.
func TestWarmRepurposeOfAMissingGroup(t *testing.T) {
	one := int32(1)
	w := worldtest.New(t)
	w.AddNode("n1")
	for i := range worldtest.BranchLimit {
		w.AddPod(fmt.Sprint("old-", i), "n1")
		w.DeletePod(fmt.Sprint("old-", i))
		w.ReconcilePod(fmt.Sprint("old-", i))
	}
	w.Release(worldtest.Cooldown)
	w.AddPolicy("q", []string{"sg-0dddddddddddddddd"}, &one) // no such group
	if err := w.Warmer.Warm(t.Context()); err == nil {
		t.Fatal("want the missing group's error")
	}
	if u, _ := w.Store.Usage("n1"); u.Warming != 0 || u.Parked != worldtest.BranchLimit {
		t.Fatalf("usage %+v, want every branch parked again", u)
	}
	// A pod still gets one and sets its groups.
	w.NewPodWithGroups("web", "n1", worldtest.OtherGroups)
	w.ReconcilePod("web")
	if eni := w.ENI(w.Annotated("web").ENIID); !inventory.SameGroups(eni.SecurityGroups, worldtest.OtherGroups) {
		t.Fatalf("the pod's branch carries %v", eni.SecurityGroups)
	}
}
