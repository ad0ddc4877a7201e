package trunk_test

import (
	"slices"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/controller/worldtest"
)

// The trunk controller, driven reconcile by reconcile (internal/controller/worldtest): trunk
// creation, adoption after a restart, nodes that cannot get one, and the teardown of a deleted
// node. The fake EC2 refuses what EC2 refuses (deleting an attached or associated ENI), so an
// ENI gone is an ENI freed in the right order.

func TestTrunkCreated(t *testing.T) {
	w := worldtest.New(t)
	n := w.NewNode("n1", worldtest.InstanceType)
	w.ReconcileNode("n1")

	tr := w.TrunkOf("n1")
	inst, err := w.EC2.DescribeInstance(t.Context(), tr.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if "aws:///us-west-2a/"+inst.ID != n.Spec.ProviderID || tr.DeviceIndex != 1 || tr.AttachmentID == "" {
		t.Errorf("trunk %s attached to %s at device index %d (%q), want the node's instance at 1", tr.ID, tr.InstanceID, tr.DeviceIndex, tr.AttachmentID)
	}
	if !slices.Equal(tr.SecurityGroups, []string{worldtest.NodeGroup}) || tr.Description != trunk.TrunkDescription {
		t.Errorf("trunk groups %v, description %q; want the node's %s and %q", tr.SecurityGroups, tr.Description, worldtest.NodeGroup, trunk.TrunkDescription)
	}
	if tr.Tags[cloud.TagCluster] != worldtest.Cluster || tr.Tags[cloud.TagNode] != "n1" {
		t.Errorf("trunk tags %v, want the cluster and the node", tr.Tags)
	}
	if got := w.Node("n1").Labels[v1beta1.LabelHasTrunkAttached]; got != "true" {
		t.Errorf("label %s = %q, want true", v1beta1.LabelHasTrunkAttached, got)
	}
	w.RequireCapacity("n1", "4")
	w.RequireEvent("n1", v1beta1.ReasonTrunkInitiated)

	// Reconciling again changes nothing.
	creates := w.EC2.Calls(fake.ActionCreateNetworkInterface)
	w.ReconcileNode("n1")
	if got := w.EC2.Calls(fake.ActionCreateNetworkInterface); got != creates {
		t.Errorf("a second reconcile created %d ENIs", got-creates)
	}
	if trunks := w.EC2.NetworkInterfaces(cloud.InterfaceTypeTrunk); len(trunks) != 1 {
		t.Errorf("%d trunks, want 1", len(trunks))
	}
}

// TestTrunkCreateRetried: a create whose response was lost is retried with the same
// ClientToken, and EC2 returns the same ENI: a node never gets two trunks.
func TestTrunkCreateRetried(t *testing.T) {
	w := worldtest.New(t)
	w.NewNode("n1", worldtest.InstanceType)
	w.EC2.NextErrorAfterEffect(fake.ActionCreateNetworkInterface, fake.Unavailable(fake.ActionCreateNetworkInterface))
	if err := w.TryReconcileNode("n1"); err == nil {
		t.Fatal("the lost response should fail the reconcile")
	}
	w.RequireEvent("n1", v1beta1.ReasonTrunkCreationFailed)
	w.ReconcileNode("n1")
	if trunks := w.EC2.NetworkInterfaces(cloud.InterfaceTypeTrunk); len(trunks) != 1 || trunks[0].AttachmentID == "" {
		t.Fatalf("trunks = %+v, want one, attached", trunks)
	}
	w.RequireCapacity("n1", "4")
}

func TestNodesWithoutTrunk(t *testing.T) {
	tests := map[string]struct {
		node       func(t *testing.T, w *worldtest.World) string
		wantReason string // "" for no event
		wantLabel  string
	}{
		"a node that does not ask": {node: func(t *testing.T, w *worldtest.World) string {
			n := w.NewNode("n1", worldtest.InstanceType)
			delete(n.Labels, v1beta1.LabelHasTrunkAttached)
			if err := w.Kube.Update(t.Context(), n); err != nil {
				t.Fatal(err)
			}
			return n.Name
		}},
		"an instance type without trunking": {node: func(t *testing.T, w *worldtest.World) string {
			return w.NewNode("n1", "t3.medium").Name
		}, wantReason: v1beta1.ReasonUnsupported, wantLabel: "false"},
		"an instance type podsg does not know": {node: func(t *testing.T, w *worldtest.World) string {
			return w.NewNode("n1", "x9.large").Name
		}, wantReason: v1beta1.ReasonUnsupported, wantLabel: "false"},
		"a node that is not an EC2 instance": {node: func(t *testing.T, w *worldtest.World) string {
			n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{v1beta1.LabelHasTrunkAttached: "false"}},
				Spec: corev1.NodeSpec{ProviderID: "kind://docker/kind/n1"}}
			if err := w.Kube.Create(t.Context(), n); err != nil {
				t.Fatal(err)
			}
			return n.Name
		}, wantReason: v1beta1.ReasonUnsupported, wantLabel: "false"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := worldtest.New(t)
			node := tc.node(t, w)
			w.ReconcileNode(node) // no error: retrying cannot help
			if trunks := w.EC2.NetworkInterfaces(cloud.InterfaceTypeTrunk); len(trunks) != 0 {
				t.Errorf("trunks = %+v, want none", trunks)
			}
			if _, ok := w.Store.Trunk(node); ok {
				t.Error("the inventory has a trunk")
			}
			w.RequireCapacity(node, "")
			if got := w.Node(node).Labels[v1beta1.LabelHasTrunkAttached]; got != tc.wantLabel {
				t.Errorf("label = %q, want %q", got, tc.wantLabel)
			}
			if tc.wantReason != "" {
				w.RequireEvent(node, tc.wantReason)
			} else if ev := w.Events(node); len(ev) != 0 {
				t.Errorf("events %+v, want none", ev)
			}
		})
	}
}

// TestTrunkAdopted: a fresh process adopts the node's trunk instead of creating one, and
// rebuilds its branches: a live pod's keeps its VLAN, a branch cooling down when the process
// died (its pod gone) cools down again, which the advertised capacity counts.
func TestTrunkAdopted(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	trunkID := w.TrunkOf("n1").ID
	_, live := w.AddPod("live", "n1")
	_, gone := w.AddPod("gone", "n1")
	w.DeletePod("gone")
	w.ReconcilePod("gone") // cooling
	w.RequireCapacity("n1", "3")

	w.Restart()
	w.ReconcileNode("n1")
	if tr, ok := w.Store.Trunk("n1"); !ok || tr.ID != trunkID {
		t.Fatalf("adopted trunk %+v, want %s", tr, trunkID)
	}
	if trunks := w.EC2.NetworkInterfaces(cloud.InterfaceTypeTrunk); len(trunks) != 1 {
		t.Fatalf("%d trunks after the restart, want the one", len(trunks))
	}
	if u, _ := w.Store.Usage("n1"); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 1, Cooling: 1}) {
		t.Errorf("usage after adoption = %+v, want one in use, one cooling", u)
	}
	branches := w.Store.Branches("n1")
	if i := slices.IndexFunc(branches, func(b inventory.Branch) bool { return b.ENIID == live }); i < 0 || branches[i].VLAN != 1 || branches[i].Cooling() {
		t.Errorf("the live pod's branch %s after adoption: %+v", live, branches)
	}
	w.RequireCapacity("n1", "3")
	if evs := w.Events("n1"); slices.ContainsFunc(evs, func(e worldtest.Event) bool { return e.Reason == v1beta1.ReasonTrunkInitiated }) {
		t.Errorf("the adopted node has a %s event, as if its trunk were new: %+v", v1beta1.ReasonTrunkInitiated, evs)
	}

	w.Drain()
	w.RequireENIs("released", []string{live, gone, trunkID}, live, trunkID)
	w.ReconcileNode("n1")
	w.RequireCapacity("n1", "4")
}

// TestNodeDeleted: the ENIs of a deleted node are freed at once, without cool-down (no pod runs
// there any more): branches disassociated and deleted, then the trunk detached and deleted. A
// failure part way is retried and resumes.
func TestNodeDeleted(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddNode("n2")
	trunkID, other := w.TrunkOf("n1").ID, w.TrunkOf("n2").ID
	_, a := w.AddPod("a", "n1")
	_, b := w.AddPod("b", "n1")
	_, c := w.AddPod("c", "n2")
	all := []string{a, b, c, trunkID, other}

	w.DeleteNode("n1")
	w.EC2.NextError(fake.ActionDeleteNetworkInterface, fake.Throttled(fake.ActionDeleteNetworkInterface))
	if err := w.TryReconcileNode("n1"); err == nil {
		t.Fatal("the throttled delete should fail the reconcile")
	}
	w.ReconcileNode("n1")
	w.RequireENIs("after the teardown", all, c, other)
	if as := w.EC2.Associations(); len(as) != 1 || as[0].BranchID != c {
		t.Errorf("associations = %+v, want n2's only", as)
	}
	if _, ok := w.Store.Trunk("n1"); ok {
		t.Error("the inventory still has n1's trunk")
	}
	w.ReconcileNode("n1") // a stray request for the gone node: nothing left to do
}

// TestNodeRecreated: node n1 is deleted and created again under its name (a new instance)
// before a reconcile saw it gone, so the one request finds the new node. The trunk the store
// holds is the old node's: it and its branches are freed as for a deleted node, and the new
// node gets a trunk of its own, with its full capacity.
func TestNodeRecreated(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	w.AddNode("n2")
	old, other := w.TrunkOf("n1").ID, w.TrunkOf("n2").ID
	_, a := w.AddPod("a", "n1")
	_, c := w.AddPod("c", "n2")

	w.DeleteNode("n1")
	w.LosePod("a")
	n := w.NewNode("n1", worldtest.InstanceType)
	w.ReconcileNode("n1")
	current, ok := w.Store.Trunk("n1")
	if !ok || current.ID == old {
		t.Fatalf("the store's trunk of n1 = %+v (found %v), want a new one, not %s", current, ok, old)
	}
	if id, _ := cloud.InstanceID(n.Spec.ProviderID); current.InstanceID != id || w.ENI(current.ID).InstanceID != id {
		t.Errorf("n1's trunk %s is on %s (EC2: %s), want the new instance %s", current.ID, current.InstanceID, w.ENI(current.ID).InstanceID, id)
	}
	w.RequireENIs("after the reconcile", []string{a, c, old, other, current.ID}, c, other, current.ID)
	w.RequireCapacity("n1", strconv.Itoa(worldtest.BranchLimit))
}

// TestOfNode: which trunk tagged with a node's name is that node's.
func TestOfNode(t *testing.T) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", UID: "uid-new"},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/i-new"}}
	noProvider := n.DeepCopy()
	noProvider.Spec.ProviderID = ""
	tags := func(uid string) map[string]string {
		m := map[string]string{cloud.TagNode: "n1"}
		if uid != "" {
			m[cloud.TagNodeUID] = uid
		}
		return m
	}
	for _, tc := range []struct {
		name     string
		instance string // the trunk's, "" when detached
		uid      string // its node-uid tag, "" when it has none
		node     *corev1.Node
		want     bool
	}{
		{"on the node's instance", "i-new", "uid-new", n, true},
		{"on the node's instance, made for an earlier node of it", "i-new", "uid-old", n, true},
		{"on another instance", "i-old", "uid-new", n, false},
		{"on another instance, untagged", "i-old", "", n, false},
		{"detached, made for the node", "", "uid-new", n, true},
		{"detached, made for an earlier node", "", "uid-old", n, false},
		{"detached, untagged (made before the tag)", "", "", n, true},
		{"node's instance unknown, made for it", "i-new", "uid-new", noProvider, true},
		{"node's instance unknown, made for an earlier node", "i-old", "uid-old", noProvider, false},
		{"node's instance unknown, untagged", "i-old", "", noProvider, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := cloud.NetworkInterface{ID: "eni-trunk", Type: cloud.InterfaceTypeTrunk, InstanceID: tc.instance, Tags: tags(tc.uid)}
			if got := trunk.OfNode(e, tc.node); got != tc.want {
				t.Errorf("OfNode = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTrunkAdoptsReusedAndParked: a fresh process rebuilds reuse from EC2 and the pods. A
// reused branch keeps the tags of the pod it was created for; the pod annotated with it owns
// it. A parked branch (no pod) cools down again, then is parked again by the groups it carries
// in EC2: nobody can tell how long ago its last pod stopped.
func TestTrunkAdoptsReusedAndParked(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	for _, name := range []string{"first", "second"} {
		w.AddPod(name, "n1")
		w.DeletePod(name)
		w.ReconcilePod(name)
	}
	w.Release(worldtest.Cooldown)
	reused := w.Annotated(w.AddPodName("reuser", "n1"))
	if tags := w.ENI(reused.ENIID).Tags; tags[cloud.TagPodName] == "reuser" {
		t.Fatalf("the reused branch's tags name %s: not reused", tags[cloud.TagPodName])
	}
	w.Restart()
	w.ReconcileNode("n1")
	if u, _ := w.Store.Usage("n1"); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 1, Cooling: 1}) {
		t.Fatalf("usage after adoption = %+v, want the reuser's in use, the parked one cooling", u)
	}
	before := w.Mutations()
	w.ReconcilePod("reuser")
	w.Release(worldtest.Cooldown)
	if u, _ := w.Store.Usage("n1"); u.Parked != 1 || u.InUse != 1 {
		t.Fatalf("usage after the cool-down = %+v, want one parked again", u)
	}
	// The next pod gets the parked branch, never the reuser's.
	if got := w.Annotated(w.AddPodName("next", "n1")); got.ENIID == reused.ENIID {
		t.Fatalf("pod next got %s, the branch of the running pod reuser", got.ENIID)
	}
	if n := w.Mutations() - before; n != 0 {
		t.Fatalf("%d EC2 mutations after the restart, want none", n)
	}
}
