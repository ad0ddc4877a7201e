package branch_test

import (
	"slices"
	"testing"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/branch"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/worldtest"
)

// Reuse: a pod's branch ENI, once cooled down, is parked on its trunk by its groups; the next
// pod of the node takes it, with no EC2 call when its groups are the same, with one that
// changes them otherwise.

// parked gives node n1 a parked branch with worldtest.Groups: a pod's, deleted, cooled down.
func parked(t *testing.T, w *worldtest.World) v1beta1.PodENI {
	t.Helper()
	w.AddNode("n1")
	w.AddPod("old", "n1")
	a := w.Annotated("old")
	w.DeletePod("old")
	w.ReconcilePod("old")
	w.Release(worldtest.Cooldown)
	if u, _ := w.Store.Usage("n1"); u.Parked != 1 {
		t.Fatalf("usage %+v, want the old pod's branch parked", u)
	}
	return a
}

func TestBranchReuse(t *testing.T) {
	tests := map[string]struct {
		groups []string
		// wantCalls are the EC2 mutations the new pod costs.
		wantCalls []string
	}{
		"the same groups, listed in another order": {groups: []string{worldtest.Groups[1], worldtest.Groups[0]}},
		"other groups": {groups: worldtest.OtherGroups, wantCalls: []string{fake.ActionModifyNetworkInterfaceAttribute}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := worldtest.New(t)
			old := parked(t, w)
			before := len(w.EC2.CallLog())
			w.NewPodWithGroups("new", "n1", tc.groups)
			w.ReconcilePod("new")

			var calls []string
			for _, c := range w.EC2.CallLog()[before:] {
				calls = append(calls, c.Action)
			}
			if !slices.Equal(calls, tc.wantCalls) {
				t.Fatalf("EC2 calls %v, want %v", calls, tc.wantCalls)
			}
			got := w.Annotated("new")
			if got != old {
				t.Fatalf("annotation %+v, want the parked branch %+v (same ENI, address, VLAN, association)", got, old)
			}
			eni, _ := w.EC2.NetworkInterface(got.ENIID)
			if !inventory.SameGroups(eni.SecurityGroups, tc.groups) {
				t.Fatalf("the branch carries %v, want %v", eni.SecurityGroups, tc.groups)
			}
			if u, _ := w.Store.Usage("n1"); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 1}) {
				t.Fatalf("usage %+v, want the branch in use", u)
			}
			w.RequireEvent("default/new", v1beta1.ReasonResourceAllocated)
			if !slices.Contains(w.Pod("new").Finalizers, branch.Finalizer) {
				t.Fatalf("finalizers %v, want %s (with the annotation when no EC2 call came first)", w.Pod("new").Finalizers, branch.Finalizer)
			}
			w.ReconcileNode("n1")
			w.RequireCapacity("n1", "4")
		})
	}
}

// TestBranchNotReusedWhileCooling: an address is reused only after its cool-down: a pod that
// comes meanwhile gets a new ENI.
func TestBranchNotReusedWhileCooling(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	_, old := w.AddPod("old", "n1")
	w.DeletePod("old")
	w.ReconcilePod("old")
	w.Release(worldtest.Cooldown - 1)
	if _, eni := w.AddPod("new", "n1"); eni == old {
		t.Fatalf("the new pod got %s while it cooled down", old)
	}
}

// TestBranchReuseOff: without reuse, every pod gets a new ENI and a cooled-down one is deleted.
func TestBranchReuseOff(t *testing.T) {
	w := worldtest.NewWith(t, worldtest.Options{NoReuse: true})
	w.AddNode("n1")
	_, old := w.AddPod("old", "n1")
	w.DeletePod("old")
	w.ReconcilePod("old")
	w.Release(worldtest.Cooldown)
	w.RequireENIs("after the cool-down", []string{old})
	before := w.Mutations()
	_, eni := w.AddPod("new", "n1")
	if eni == old || w.Mutations()-before != 2 {
		t.Fatalf("the new pod got %s with %d mutations; want a new ENI: create, associate", eni, w.Mutations()-before)
	}
}

// TestBranchGroupsChangeFailed: the call that changes a parked branch's groups fails after it
// took effect (a lost response), and the pod goes before a retry. The branch, parked again,
// has unknown groups: a pod with its former groups gets them set again, never the groups a
// failed call may have left.
func TestBranchGroupsChangeFailed(t *testing.T) {
	w := worldtest.New(t)
	old := parked(t, w)
	w.EC2.NextErrorAfterEffect(fake.ActionModifyNetworkInterfaceAttribute, fake.Unavailable(fake.ActionModifyNetworkInterfaceAttribute))
	w.NewPodWithGroups("other", "n1", worldtest.OtherGroups)
	if _, err := w.TryReconcilePod("other"); err == nil {
		t.Fatal("the lost response should fail the reconcile")
	}
	w.DeletePod("other")
	w.ReconcilePod("other")
	w.Release(worldtest.Cooldown)

	before := len(w.EC2.CallLog())
	w.NewPod("same", "n1") // worldtest.Groups: what the store knew the branch had before
	w.ReconcilePod("same")
	if got := w.Annotated("same"); got.ENIID != old.ENIID {
		t.Fatalf("the pod got %s, want the parked %s", got.ENIID, old.ENIID)
	}
	if calls := w.EC2.CallLog()[before:]; len(calls) != 1 || calls[0].Action != fake.ActionModifyNetworkInterfaceAttribute {
		t.Fatalf("calls %+v, want the groups set again", calls)
	}
	if eni, _ := w.EC2.NetworkInterface(old.ENIID); !inventory.SameGroups(eni.SecurityGroups, worldtest.Groups) {
		t.Fatalf("the pod's branch carries %v, want %v", eni.SecurityGroups, worldtest.Groups)
	}
}

// TestBranchGroupsChangeRetried: a failed change of groups is reported and retried on the same
// branch, which stays the pod's meanwhile.
func TestBranchGroupsChangeRetried(t *testing.T) {
	w := worldtest.New(t)
	old := parked(t, w)
	w.EC2.NextError(fake.ActionModifyNetworkInterfaceAttribute, &cloud.APIError{Op: fake.ActionModifyNetworkInterfaceAttribute,
		Code: "InvalidGroup.NotFound", Message: "no such group", Kind: cloud.ErrNotFound})
	w.NewPodWithGroups("other", "n1", worldtest.OtherGroups)
	if _, err := w.TryReconcilePod("other"); err == nil {
		t.Fatal("want the modify's error")
	}
	w.RequireEvent("default/other", v1beta1.ReasonAllocationFailed)
	w.ReconcilePod("other")
	if got := w.Annotated("other"); got.ENIID != old.ENIID {
		t.Fatalf("the pod got %s, want the parked %s", got.ENIID, old.ENIID)
	}
	if n := w.EC2.Calls(fake.ActionCreateNetworkInterface); n != 2 { // the trunk, the first pod's
		t.Fatalf("%d creates, want none for the retried pod", n)
	}
}

// TestParkedBranchesAreCapacity: a full trunk of parked branches serves as many new pods,
// whatever their groups, with no create.
func TestParkedBranchesAreCapacity(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	names := []string{"a", "b", "c", "d"}
	for _, n := range names {
		w.AddPod(n, "n1")
	}
	for _, n := range names {
		w.DeletePod(n)
		w.ReconcilePod(n)
	}
	w.Release(worldtest.Cooldown)
	w.ReconcileNode("n1")
	w.RequireCapacity("n1", "4")
	creates := w.EC2.Calls(fake.ActionCreateNetworkInterface)
	for i, n := range []string{"e", "f", "g", "h"} {
		groups := worldtest.Groups
		if i%2 == 1 {
			groups = worldtest.OtherGroups
		}
		w.NewPodWithGroups(n, "n1", groups)
		w.ReconcilePod(n)
		w.Annotated(n)
	}
	if n := w.EC2.Calls(fake.ActionCreateNetworkInterface); n != creates {
		t.Fatalf("%d creates for pods on a trunk of parked branches", n-creates)
	}
	if n := w.EC2.Calls(fake.ActionModifyNetworkInterfaceAttribute); n != 2 {
		t.Fatalf("%d changes of groups, want 2 (the pods with other groups)", n)
	}
}

// TestIdleTTLKeepsTheWarmTarget: idle branches beyond their groups' warm target on their node
// are deleted after the idle TTL; the target's stay.
func TestIdleTTLKeepsTheWarmTarget(t *testing.T) {
	w := worldtest.NewWith(t, worldtest.Options{Targets: targets{inventory.GroupsKey(worldtest.Groups): 1}})
	w.AddNode("n1")
	var enis []string
	for _, n := range []string{"a", "b", "c"} {
		_, e := w.AddPod(n, "n1")
		enis = append(enis, e)
	}
	for _, n := range []string{"a", "b", "c"} {
		w.DeletePod(n)
		w.ReconcilePod(n)
	}
	w.Drain()
	left := 0
	for _, e := range enis {
		if w.Exists(e) {
			left++
		}
	}
	if u, _ := w.Store.Usage("n1"); left != 1 || u.Parked != 1 {
		t.Fatalf("%d of the 3 branches left (usage %+v), want the warm target's 1", left, u)
	}
}

type targets map[string]int

func (t targets) Target(_, groups string) int { return t[groups] }
