package branch_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
)

// The sweeper frees ENIs tagged for the cluster that nothing owns, on the second pass that
// finds them unowned. These tests drive it pass by pass, after the node and branch controllers
// built the state it meets; the fake EC2 refuses, as EC2 does, to delete an associated branch
// or an attached trunk, so an ENI gone is an ENI freed in the right order.

// orphanBranch leaves the ENI of pod name on nodeName without an association, as a crash
// between CreateNetworkInterface and AssociateTrunkInterface does, and returns its id.
func orphanBranch(t *testing.T, w *world, name, nodeName string) string {
	t.Helper()
	w.ec2.NextError(fake.ActionAssociateTrunkInterface, fake.Unavailable(fake.ActionAssociateTrunkInterface))
	p := w.newPod(name, nodeName)
	if err := w.tryReconcilePod(name); err == nil {
		t.Fatal("the association should have failed")
	}
	for _, e := range w.ec2.NetworkInterfaces(cloud.InterfaceTypeBranch) {
		if e.Tags[cloud.TagPodUID] == string(p.UID) {
			return e.ID
		}
	}
	t.Fatalf("pod %s has no ENI", name)
	return ""
}

func TestSweepFreesBranchOfVanishedPod(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	_, live := w.addPod("live", "n1")
	lost := orphanBranch(t, w, "lost", "n1")
	trunkID := w.trunkOf("n1").ID
	// The process dies; the pod goes while it is down; the next one adopts the node's trunk,
	// which does not hold the unassociated ENI.
	w.restart()
	w.losePod("lost")
	w.reconcileNode("n1")
	all := []string{live, lost, trunkID}

	w.sweep()
	w.requireENIs("first sweep: an orphan seen once stays", all, live, lost, trunkID)
	w.sweep()
	w.requireENIs("second sweep", all, live, trunkID)
	w.sweep()
	w.requireENIs("third sweep", all, live, trunkID)
}

func TestSweepFreesBranchOfReplacedPod(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	old := orphanBranch(t, w, "web", "n1")
	w.restart()
	// A new pod of the same name (a StatefulSet's) does not own its predecessor's ENI.
	w.losePod("web")
	w.reconcileNode("n1")
	_, current := w.addPod("web", "n1")
	if current == old {
		t.Fatalf("the new pod got its predecessor's ENI %s", old)
	}
	w.sweep()
	w.sweep()
	w.requireENIs("after two sweeps", []string{old, current}, current)
}

func TestSweepFreesBranchOfFinishedPod(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	eni := orphanBranch(t, w, "job", "n1")
	w.restart()
	w.reconcileNode("n1")
	// The pod ended while podsg-controller was down and stays as a record (a Job's pod): it
	// will never run again, and the branch controller, which does not hold its ENI, never
	// frees it.
	p := &corev1.Pod{}
	if err := w.kube.Get(t.Context(), types.NamespacedName{Namespace: "default", Name: "job"}, p); err != nil {
		t.Fatal(err)
	}
	p.Status.Phase = corev1.PodFailed
	if err := w.kube.Status().Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	w.reconcilePod("job")
	w.sweep()
	w.sweep()
	w.requireENIs("after two sweeps", []string{eni})
}

func TestSweepKeepsLivePodsENIs(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	_, a := w.addPod("a", "n1")
	_, b := w.addPod("b", "n1")
	unassociated := orphanBranch(t, w, "c", "n1") // its pod lives: the next reconcile associates it
	trunkID := w.trunkOf("n1").ID
	// A fresh process whose trunk controller has not adopted the trunk yet: the store knows
	// nothing, the pods and the node own everything.
	w.restart()
	all := []string{a, b, unassociated, trunkID}
	for range 3 {
		w.sweep()
	}
	w.requireENIs("after three sweeps", all, all...)
}

func TestSweepKeepsOtherClustersENIs(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	mk := func(tags map[string]string) string {
		t.Helper()
		e, err := w.ec2.CreateNetworkInterface(t.Context(), cloud.CreateNetworkInterfaceInput{
			SubnetID: subnetID, Type: cloud.InterfaceTypeBranch, SecurityGroups: groups, Tags: tags})
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
	for range 3 {
		w.sweep()
	}
	w.requireENIs("after three sweeps", []string{other, untagged}, other, untagged)
}

func TestSweepLeavesCoolingENIsToTheReleaser(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	_, eni := w.addPod("web", "n1")
	w.deletePod("web")
	w.reconcilePod("web") // cooling down now
	for range 3 {
		w.sweep()
	}
	w.requireENIs("cooling, after three sweeps", []string{eni}, eni)
	w.clock.Step(cooldown)
	w.releaser.ReleaseDue(t.Context())
	w.requireENIs("after the cool-down", []string{eni})
}

// TestSweepGrace: an orphan the first pass saw, which a fresh process adopts before the next
// pass, is the releaser's: it waits out its cool-down.
func TestSweepGrace(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	_, eni := w.addPod("web", "n1")
	w.restart()
	w.losePod("web")
	w.sweep() // before the trunk controller adopted the trunk: an orphan, seen once
	w.reconcileNode("n1")
	w.sweep()
	w.sweep()
	w.requireENIs("adopted, cooling", []string{eni}, eni)
	w.clock.Step(cooldown)
	w.releaser.ReleaseDue(t.Context())
	w.requireENIs("after the cool-down", []string{eni})
}

// TestSweepNodeDeletedWhileDown: a node, its trunk and two branches; podsg-controller is down
// while the node and its pods are deleted, so no teardown runs. The next process never hears
// of the node: the sweeper frees the branches (disassociated, deleted) and then the trunk
// (detached, deleted), in the same pass, the second.
func TestSweepNodeDeletedWhileDown(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	_, a := w.addPod("a", "n1")
	_, b := w.addPod("b", "n1")
	trunkID := w.trunkOf("n1").ID
	w.restart()
	w.deleteNode("n1")
	w.losePod("a")
	w.losePod("b")
	w.reconcileNode("n1") // a stray request for the gone node finds nothing to tear down
	all := []string{a, b, trunkID}

	w.sweep()
	w.requireENIs("first sweep", all, all...)
	w.sweep()
	w.requireENIs("second sweep", all)
	if as := w.ec2.Associations(); len(as) != 0 {
		t.Fatalf("associations left: %+v", as)
	}
}

// TestSweepNodeDeletedPodsRemain: the node went while podsg-controller was down, but its
// pods are still there (nobody collected them yet). Their branches are theirs, and the trunk
// carrying them stays attached; once the pods are gone, everything goes.
func TestSweepNodeDeletedPodsRemain(t *testing.T) {
	w := newWorld(t)
	w.addNode("n1")
	_, a := w.addPod("a", "n1")
	_, b := w.addPod("b", "n1")
	trunkID := w.trunkOf("n1").ID
	w.restart()
	w.deleteNode("n1")
	all := []string{a, b, trunkID}
	for range 3 {
		w.sweep()
	}
	w.requireENIs("pods remain", all, all...)
	if tr, _ := w.ec2.NetworkInterface(trunkID); tr.AttachmentID == "" {
		t.Fatalf("trunk %s was detached while it carries the branches of live pods", trunkID)
	}

	w.losePod("a")
	w.sweep()
	w.sweep()
	w.requireENIs("pod a gone", all, b, trunkID)
	w.losePod("b")
	w.sweep()
	w.sweep()
	w.requireENIs("both gone", all)
}
