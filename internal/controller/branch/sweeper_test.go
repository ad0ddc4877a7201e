package branch_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/worldtest"
)

// The sweeper frees ENIs tagged for the cluster that nothing owns, on the second pass that
// finds them unowned. These tests drive it pass by pass, after the node and branch controllers
// built the state it meets; the fake EC2 refuses, as EC2 does, to delete an associated branch
// or an attached trunk, so an ENI gone is an ENI freed in the right order.

// orphanBranch leaves the ENI of pod name on nodeName without an association, as a crash
// between CreateNetworkInterface and AssociateTrunkInterface does, and returns its id.
func orphanBranch(t *testing.T, w *worldtest.World, name, nodeName string) string {
	t.Helper()
	w.EC2.NextError(fake.ActionAssociateTrunkInterface, fake.Unavailable(fake.ActionAssociateTrunkInterface))
	p := w.NewPod(name, nodeName)
	if _, err := w.TryReconcilePod(name); err == nil {
		t.Fatal("the association should have failed")
	}
	e, ok := w.BranchOf(p)
	if !ok {
		t.Fatalf("pod %s has no ENI", name)
	}
	return e.ID
}

func TestSweepFreesBranchOfVanishedPod(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	_, live := w.AddPod("live", "n1")
	lost := orphanBranch(t, w, "lost", "n1")
	trunkID := w.TrunkOf("n1").ID
	// The process dies; the pod goes while it is down; the next one adopts the node's trunk,
	// which does not hold the unassociated ENI.
	w.Restart()
	w.LosePod("lost")
	w.ReconcileNode("n1")
	all := []string{live, lost, trunkID}

	w.Sweep()
	w.RequireENIs("first sweep: an orphan seen once stays", all, live, lost, trunkID)
	w.Sweep()
	w.RequireENIs("second sweep", all, live, trunkID)
	w.Sweep()
	w.RequireENIs("third sweep", all, live, trunkID)
}

func TestSweepFreesBranchOfReplacedPod(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	old := orphanBranch(t, w, "web", "n1")
	w.Restart()
	// A new pod of the same name (a StatefulSet's) does not own its predecessor's ENI.
	w.LosePod("web")
	w.ReconcileNode("n1")
	_, current := w.AddPod("web", "n1")
	if current == old {
		t.Fatalf("the new pod got its predecessor's ENI %s", old)
	}
	w.Sweep()
	w.Sweep()
	w.RequireENIs("after two sweeps", []string{old, current}, current)
}

func TestSweepFreesBranchOfFinishedPod(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	eni := orphanBranch(t, w, "job", "n1")
	w.Restart()
	w.ReconcileNode("n1")
	// The pod ended while podsg-controller was down and stays as a record (a Job's pod): it
	// will never run again, and the branch controller, which does not hold its ENI, never
	// frees it.
	w.SetPhase("job", corev1.PodFailed)
	w.ReconcilePod("job")
	w.Sweep()
	w.Sweep()
	w.RequireENIs("after two sweeps", []string{eni})
}

func TestSweepKeepsLivePodsENIs(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	_, a := w.AddPod("a", "n1")
	_, b := w.AddPod("b", "n1")
	unassociated := orphanBranch(t, w, "c", "n1") // its pod lives: the next reconcile associates it
	trunkID := w.TrunkOf("n1").ID
	// A fresh process whose trunk controller has not adopted the trunk yet: the store knows
	// nothing, the pods and the node own everything.
	w.Restart()
	all := []string{a, b, unassociated, trunkID}
	for range 3 {
		w.Sweep()
	}
	w.RequireENIs("after three sweeps", all, all...)
}

func TestSweepKeepsOtherClustersENIs(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	mk := func(tags map[string]string) string {
		t.Helper()
		e, err := w.EC2.CreateNetworkInterface(t.Context(), cloud.CreateNetworkInterfaceInput{
			SubnetID: worldtest.SubnetID, Type: cloud.InterfaceTypeBranch, SecurityGroups: worldtest.Groups, Tags: tags})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	// Tagged like ours, for pods that do not exist here: another cluster's, in the same VPC.
	other := mk(map[string]string{cloud.TagCluster: "other-cluster", cloud.TagNamespace: "default",
		cloud.TagPodName: "gone", cloud.TagPodUID: "uid-gone", cloud.TagNode: "n1"})
	// And one no podsg made.
	untagged := mk(nil)
	// And one with the cluster's tag that is no branch: the local cluster's API server ENI.
	host := mk(map[string]string{cloud.TagCluster: worldtest.Cluster})
	for range 3 {
		w.Sweep()
	}
	w.RequireENIs("after three sweeps", []string{other, untagged, host}, other, untagged, host)
}

func TestSweepLeavesCoolingENIsToTheReleaser(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	_, eni := w.AddPod("web", "n1")
	w.DeletePod("web")
	w.ReconcilePod("web") // cooling down now
	for range 3 {
		w.Sweep()
	}
	w.RequireENIs("cooling, after three sweeps", []string{eni}, eni)
	w.Drain()
	w.RequireENIs("released", []string{eni})
}

// TestSweepGrace: an orphan the first pass saw, which a fresh process adopts before the next
// pass, is the releaser's: it waits out its cool-down.
func TestSweepGrace(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	_, eni := w.AddPod("web", "n1")
	w.Restart()
	w.LosePod("web")
	w.Sweep() // before the trunk controller adopted the trunk: an orphan, seen once
	w.ReconcileNode("n1")
	w.Sweep()
	w.Sweep()
	w.RequireENIs("adopted, cooling", []string{eni}, eni)
	w.Drain()
	w.RequireENIs("released", []string{eni})
}

// TestSweepNodeDeletedWhileDown: a node, its trunk and two branches; podsg-controller is down
// while the node and its pods are deleted, so no teardown runs. The next process never hears
// of the node: the sweeper frees the branches (disassociated, deleted) and then the trunk
// (detached, deleted), in the same pass, the second.
func TestSweepNodeDeletedWhileDown(t *testing.T) {
	w, a, b, trunkID := nodeDeletedWhileDown(t)
	w.LosePod("a")
	w.LosePod("b")
	w.ReconcileNode("n1") // a stray request for the gone node finds nothing to tear down
	all := []string{a, b, trunkID}

	w.Sweep()
	w.RequireENIs("first sweep", all, all...)
	w.Sweep()
	w.RequireENIs("second sweep", all)
	if as := w.EC2.Associations(); len(as) != 0 {
		t.Fatalf("associations left: %+v", as)
	}
}

// TestSweepNodeDeletedPodsRemain: the node went while podsg-controller was down, but its
// pods are still there (nobody collected them yet). Their branches are theirs, and the trunk
// carrying them stays attached; once the pods are gone, everything goes.
func TestSweepNodeDeletedPodsRemain(t *testing.T) {
	w, a, b, trunkID := nodeDeletedWhileDown(t)
	all := []string{a, b, trunkID}
	for range 3 {
		w.Sweep()
	}
	w.RequireENIs("pods remain", all, all...)
	if tr, _ := w.EC2.NetworkInterface(trunkID); tr.AttachmentID == "" {
		t.Fatalf("trunk %s was detached while it carries the branches of live pods", trunkID)
	}

	w.LosePod("a")
	w.Sweep()
	w.Sweep()
	w.RequireENIs("pod a gone", all, b, trunkID)
	w.LosePod("b")
	w.Sweep()
	w.Sweep()
	w.RequireENIs("both gone", all)
}

// TestSweepNodeRecreatedWhileDown: while podsg-controller is down, node n1 is deleted and a
// new node of the same name (a new instance, a new UID) takes its place, and gets its own
// trunk. The old node's trunk, on its old instance or detached from it (the instance was
// terminated), is the old node's: the sweeper frees it as for a deleted node.
func TestSweepNodeRecreatedWhileDown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		detach bool
	}{{"old instance runs", false}, {"old trunk detached", true}} {
		t.Run(tc.name, func(t *testing.T) {
			w, a, b, old := nodeDeletedWhileDown(t)
			if tc.detach {
				if err := w.EC2.DetachNetworkInterface(t.Context(), w.ENI(old).AttachmentID, true); err != nil {
					t.Fatal(err)
				}
			}
			w.LosePod("a")
			w.LosePod("b")
			w.NewNode("n1", worldtest.InstanceType)
			w.ReconcileNode("n1")
			current, _ := w.Store.Trunk("n1")
			if current.ID == old {
				t.Fatalf("the new node n1 got the old node's trunk %s", old)
			}
			all := []string{a, b, old, current.ID}

			w.Sweep()
			w.RequireENIs("first sweep", all, all...)
			w.Sweep()
			w.RequireENIs("second sweep", all, current.ID)
			w.Sweep()
			w.RequireENIs("third sweep", all, current.ID)
		})
	}
}

// nodeDeletedWhileDown gives node n1 a trunk and the branches of pods a and b, then deletes
// the node while podsg-controller is down (a fresh incarnation follows).
func nodeDeletedWhileDown(t *testing.T) (w *worldtest.World, a, b, trunkID string) {
	t.Helper()
	w = worldtest.New(t)
	w.AddNode("n1")
	_, a = w.AddPod("a", "n1")
	_, b = w.AddPod("b", "n1")
	trunkID = w.TrunkOf("n1").ID
	w.Restart()
	w.DeleteNode("n1")
	return w, a, b, trunkID
}

// TestSweepKeepsReusedBranch: a reused branch's tags name a pod that is gone; the pod
// annotated with it owns it, also for a fresh process that has not adopted its trunk yet.
func TestSweepKeepsReusedBranch(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddPod("first", "n1")
	w.DeletePod("first")
	w.ReconcilePod("first")
	w.Release(worldtest.Cooldown)
	_, reused := w.AddPod("reuser", "n1")
	w.Restart()
	for range 3 {
		w.Sweep()
	}
	w.RequireENIs("after three sweeps", []string{reused}, reused)
}
