package branch_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/branch"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/worldtest"
	"github.com/podsg/podsg/internal/policy"
)

// The branch controller and the releaser, driven reconcile by reconcile
// (internal/controller/worldtest): allocation, the cool-down and release of a pod's branch
// ENI, and every way a pod stops owning it.

func annotation(t *testing.T, p *corev1.Pod) v1beta1.PodENI {
	t.Helper()
	enis, err := v1beta1.ParsePodENIs(p.Annotations[v1beta1.AnnotationPodENI])
	if err != nil || len(enis) != 1 {
		t.Fatalf("pod %s: annotation %q (%v), want one ENI", p.Name, p.Annotations[v1beta1.AnnotationPodENI], err)
	}
	return enis[0]
}

func TestBranchAllocated(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	tr := w.TrunkOf("n1")
	w.NewPod("web", "n1")
	w.ReconcilePod("web")

	p := w.Pod("web")
	a := annotation(t, p)
	eni, ok := w.EC2.NetworkInterface(a.ENIID)
	if !ok {
		t.Fatalf("annotated ENI %s is not in EC2", a.ENIID)
	}
	if a.IfAddress != eni.MAC || a.PrivateIP != eni.PrivateIP || a.VLANID != 1 || a.SubnetCIDR != worldtest.SubnetCIDR {
		t.Errorf("annotation %+v does not describe ENI %+v on VLAN 1 of %s", a, eni, worldtest.SubnetCIDR)
	}
	if eni.Type != cloud.InterfaceTypeBranch || eni.Description != branch.BranchDescription || !slices.Equal(eni.SecurityGroups, worldtest.Groups) {
		t.Errorf("ENI %+v: want a branch with exactly the admitted groups %v", eni, worldtest.Groups)
	}
	for k, v := range map[string]string{cloud.TagCluster: worldtest.Cluster, cloud.TagNamespace: p.Namespace, cloud.TagPodName: p.Name,
		cloud.TagPodUID: string(p.UID), cloud.TagNode: "n1", cloud.TagTrunkENI: tr.ID} {
		if eni.Tags[k] != v {
			t.Errorf("tag %s = %q, want %q", k, eni.Tags[k], v)
		}
	}
	if as := w.EC2.Associations(); len(as) != 1 || as[0].TrunkID != tr.ID || as[0].BranchID != eni.ID || as[0].VLAN != 1 || as[0].ID != a.AssociationID {
		t.Errorf("associations = %+v, want %s on %s, VLAN 1, as annotated (%s)", as, eni.ID, tr.ID, a.AssociationID)
	}
	if !slices.Contains(p.Finalizers, branch.Finalizer) {
		t.Errorf("finalizers = %v, want %s", p.Finalizers, branch.Finalizer)
	}
	w.RequireEvent("default/web", v1beta1.ReasonSecurityGroupRequested)
	w.RequireEvent("default/web", v1beta1.ReasonResourceAllocated)

	// Reconciling again changes nothing.
	w.ReconcilePod("web")
	if n := w.EC2.Calls(fake.ActionCreateNetworkInterface); n != 2 { // the trunk and the branch
		t.Errorf("%d CreateNetworkInterface calls, want 2", n)
	}
}

// TestBranchWanted: the controller allocates exactly for the pods policy.WantsBranchENI names,
// whichever container asks.
func TestBranchWanted(t *testing.T) {
	one := corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("1")}
	tests := map[string]struct {
		shape func(p *corev1.Pod)
		want  bool
	}{
		"the webhook's mark": {shape: policy.RequestBranchENI, want: true},
		"a later container": {shape: func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "log", Resources: corev1.ResourceRequirements{Requests: one, Limits: one}})
		}, want: true},
		"a limit alone": {shape: func(p *corev1.Pod) { p.Spec.Containers[0].Resources.Limits = one }, want: true},
		"no request":    {shape: func(*corev1.Pod) {}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := worldtest.New(t)
			w.AddNode("n1")
			p := w.PlainPod("p", "n1")
			p.Annotations = map[string]string{v1beta1.AnnotationSecurityGroups: policy.JoinGroups(worldtest.Groups)}
			tc.shape(p)
			w.CreatePod(p)
			w.ReconcilePod("p")
			_, annotated := w.Pod("p").Annotations[v1beta1.AnnotationPodENI]
			_, hasENI := w.BranchOf(p)
			if annotated != tc.want || hasENI != tc.want {
				t.Fatalf("annotated %v, has an ENI %v; want %v", annotated, hasENI, tc.want)
			}
		})
	}
}

// TestBranchWaitsForTrunk: a pod bound to a node whose trunk is not there yet is looked at
// again, its node is asked for first (TrunkWanted: a restarted controller adopts thousands of
// nodes, the ones pods wait on first), and the pod is allocated once the trunk is there.
func TestBranchWaitsForTrunk(t *testing.T) {
	var wanted []string
	w := worldtest.NewWith(t, worldtest.Options{TrunkWanted: func(node string) { wanted = append(wanted, node) }})
	w.NewNode("n1", worldtest.InstanceType)
	w.AddNode("n2")
	w.NewPod("web", "n1")
	if res := w.ReconcilePod("web"); res.RequeueAfter <= 0 {
		t.Fatalf("result %+v, want a requeue while the node has no trunk", res)
	}
	if _, ok := w.Pod("web").Annotations[v1beta1.AnnotationPodENI]; ok {
		t.Fatal("annotated without a trunk")
	}
	if !slices.Equal(wanted, []string{"n1"}) {
		t.Fatalf("trunks asked for %v, want [n1]", wanted)
	}
	w.ReconcileNode("n1")
	w.ReconcilePod("web")
	annotation(t, w.Pod("web"))
	w.AddPod("api", "n2")
	if !slices.Equal(wanted, []string{"n1"}) {
		t.Fatalf("trunks asked for %v, want only n1's: the others were there", wanted)
	}
}

// TestBranchNeedsAdmittedGroups: a pod that asks for a branch ENI without the groups admission
// resolved gets none, and an event saying why; never the node's groups.
func TestBranchNeedsAdmittedGroups(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	p := w.PlainPod("web", "n1")
	policy.RequestBranchENI(p)
	w.CreatePod(p)
	w.ReconcilePod("web")
	if _, ok := w.BranchOf(p); ok {
		t.Fatal("a branch ENI was created without admitted groups")
	}
	if got := w.Pod("web"); len(got.Finalizers) != 0 || got.Annotations[v1beta1.AnnotationPodENI] != "" {
		t.Fatalf("pod %+v, want neither finalizer nor annotation", got.ObjectMeta)
	}
	w.RequireEvent("default/web", v1beta1.ReasonNoSecurityGroups)
}

// TestBranchCooldown: a pod deleted with no grace period left has its branch released into
// the cool-down at once, the node's capacity lowered before the pod goes. When the cool-down
// ends the slot comes back: without reuse the releaser deletes the ENI; with reuse it parks
// it, associated, and deletes it only after the idle TTL (no warm target here).
func TestBranchCooldown(t *testing.T) {
	for name, reuse := range map[string]bool{"reuse": true, "no reuse": false} {
		t.Run(name, func(t *testing.T) {
			w := worldtest.NewWith(t, worldtest.Options{NoReuse: !reuse})
			w.AddNode("n1")
			_, eni := w.AddPod("web", "n1")
			w.RequireCapacity("n1", "4")

			w.DeletePod("web")
			w.ReconcilePod("web")
			if !w.PodGone("web") {
				t.Fatal("the finalizer was not removed")
			}
			w.RequireCapacity("n1", "3")
			if u, _ := w.Store.Usage("n1"); u.Cooling != 1 || u.InUse != 0 {
				t.Fatalf("usage = %+v, want one cooling", u)
			}
			w.RequireENIs("cooling", []string{eni}, eni)

			w.Release(worldtest.Cooldown - 1)
			w.RequireENIs("just before the end of the cool-down", []string{eni}, eni)
			w.Release(1)
			w.ReconcileNode("n1")
			w.RequireCapacity("n1", "4")
			if reuse {
				w.RequireENIs("parked", []string{eni}, eni)
				if u, _ := w.Store.Usage("n1"); u != (inventory.Usage{Limit: worldtest.BranchLimit, Parked: 1}) {
					t.Fatalf("usage = %+v, want one parked", u)
				}
				if as := w.EC2.Associations(); len(as) != 1 || as[0].BranchID != eni {
					t.Fatalf("associations = %+v, want the parked branch's", as)
				}
				w.Release(worldtest.IdleTTL - 1)
				w.RequireENIs("just before the idle TTL", []string{eni}, eni)
				w.Release(1)
			}
			w.RequireENIs("released", []string{eni})
			if as := w.EC2.Associations(); len(as) != 0 {
				t.Fatalf("associations left: %+v", as)
			}
			w.ReconcileNode("n1")
			w.RequireCapacity("n1", "4")
		})
	}
}

// TestBranchKeptDuringGracePeriod: a pod deleted with a grace period is still running; it
// keeps its branch until the kubelet is done (grace period 0), then releases it.
func TestBranchKeptDuringGracePeriod(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	_, eni := w.AddPod("web", "n1")
	w.DeletePodWithGrace("web", 30)
	w.ReconcilePod("web")
	if w.PodGone("web") {
		t.Fatal("the pod went during its grace period")
	}
	if u, _ := w.Store.Usage("n1"); u.InUse != 1 || u.Cooling != 0 {
		t.Fatalf("usage during the grace period = %+v, want the branch in use", u)
	}
	w.RequireCapacity("n1", "4")

	w.DeletePodWithGrace("web", 0) // the kubelet stopped the containers
	w.ReconcilePod("web")
	if !w.PodGone("web") {
		t.Fatal("the finalizer was not removed")
	}
	if u, _ := w.Store.Usage("n1"); u.Cooling != 1 {
		t.Fatalf("usage = %+v, want the branch cooling", u)
	}
	w.Drain()
	w.RequireENIs("released", []string{eni})
}

// TestBranchOfFinishedPod: a pod that finished (a Job's) releases its branch and its
// finalizer, and stays as a record.
func TestBranchOfFinishedPod(t *testing.T) {
	for _, phase := range []corev1.PodPhase{corev1.PodSucceeded, corev1.PodFailed} {
		t.Run(string(phase), func(t *testing.T) {
			w := worldtest.New(t)
			w.AddNode("n1")
			_, eni := w.AddPod("job", "n1")
			w.SetPhase("job", phase)
			w.ReconcilePod("job")
			if p := w.Pod("job"); slices.Contains(p.Finalizers, branch.Finalizer) {
				t.Fatalf("finalizers = %v, want ours removed", p.Finalizers)
			}
			w.RequireCapacity("n1", "3")
			w.Drain()
			w.RequireENIs("released", []string{eni})
		})
	}
}

// TestBranchOfReplacedPod: a new pod of the same name (a StatefulSet's) gets its own branch on
// another VLAN; its predecessor's cools down.
func TestBranchOfReplacedPod(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	_, old := w.AddPod("db-0", "n1")
	w.LosePod("db-0")
	w.NewPod("db-0", "n1")
	w.ReconcilePod("db-0")
	a := annotation(t, w.Pod("db-0"))
	if a.ENIID == old || a.VLANID == 1 {
		t.Fatalf("the new pod got %s on VLAN %d; its predecessor had %s on VLAN 1, cooling down", a.ENIID, a.VLANID, old)
	}
	if u, _ := w.Store.Usage("n1"); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 1, Cooling: 1}) {
		t.Fatalf("usage = %+v, want one in use, one cooling", u)
	}
	w.Drain()
	w.RequireENIs("released", []string{old, a.ENIID}, a.ENIID)
}

// TestBranchCapacity: cooling branches hold their slot; a pod beyond the limit waits, with an
// event, until the releaser frees one, and then gets the freed VLAN.
func TestBranchCapacity(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	for _, name := range []string{"p1", "p2", "p3", "p4"} {
		w.AddPod(name, "n1")
	}
	w.DeletePod("p1")
	w.ReconcilePod("p1")
	w.NewPod("p5", "n1")
	if _, err := w.TryReconcilePod("p5"); err == nil {
		t.Fatal("a fifth branch on a trunk of four, one cooling: want an error")
	}
	w.RequireEvent("default/p5", v1beta1.ReasonAllocationFailed)

	w.Release(worldtest.Cooldown)
	w.ReconcilePod("p5")
	if a := annotation(t, w.Pod("p5")); a.VLANID != 1 {
		t.Fatalf("p5 got VLAN %d, want p1's freed VLAN 1", a.VLANID)
	}
}

// TestBranchCreateRetried: an EC2 failure the user can fix is reported and retried; a lost
// response is retried with the same ClientToken: a pod never gets two ENIs.
func TestBranchCreateRetried(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	p := w.NewPod("web", "n1")
	w.EC2.NextError(fake.ActionCreateNetworkInterface, &cloud.APIError{Op: fake.ActionCreateNetworkInterface,
		Code: "InvalidGroup.NotFound", Message: "no such group", Kind: cloud.ErrNotFound})
	if _, err := w.TryReconcilePod("web"); err == nil {
		t.Fatal("want the create's error")
	}
	w.RequireEvent("default/web", v1beta1.ReasonAllocationFailed)
	w.EC2.NextErrorAfterEffect(fake.ActionCreateNetworkInterface, fake.Unavailable(fake.ActionCreateNetworkInterface))
	if _, err := w.TryReconcilePod("web"); err == nil {
		t.Fatal("want the lost response's error")
	}
	w.ReconcilePod("web")
	a := annotation(t, w.Pod("web"))
	var mine []string
	for _, e := range w.EC2.NetworkInterfaces(cloud.InterfaceTypeBranch) {
		if e.Tags[cloud.TagPodUID] == string(p.UID) {
			mine = append(mine, e.ID)
		}
	}
	if !slices.Equal(mine, []string{a.ENIID}) {
		t.Fatalf("the pod's ENIs %v, want only the annotated %s", mine, a.ENIID)
	}
}
