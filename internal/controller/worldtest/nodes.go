package worldtest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
)

// AddNode seeds a node that asks for a trunk and reconciles it: it has a trunk.
func (w *World) AddNode(name string) *corev1.Node {
	w.t.Helper()
	n := w.NewNode(name, InstanceType)
	w.ReconcileNode(name)
	if _, ok := w.Store.Trunk(name); !ok {
		w.t.Fatalf("node %s has no trunk after a reconcile", name)
	}
	return n
}

// NewNode seeds an instance of instanceType with its primary ENI, and its Node asking for a
// trunk (label vpc.amazonaws.com/has-trunk-attached=false, as podsg-agent sets it), without
// reconciling. Each call makes a new instance and a new UID, also for a name used before (a
// node deleted and created again).
func (w *World) NewNode(name, instanceType string) *corev1.Node {
	w.t.Helper()
	w.instances++
	id := fmt.Sprintf("i-%017x", w.instances)
	if err := w.EC2.AddInstance(fake.Instance{ID: id, Type: instanceType, SubnetID: SubnetID,
		SecurityGroups: []string{NodeGroup}, MaxBranches: BranchLimit}); err != nil {
		w.t.Fatal(err)
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(fmt.Sprintf("uid-%s-%d", name, w.instances)),
		Labels: map[string]string{v1beta1.LabelHasTrunkAttached: "false"}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + id}}
	if err := w.Kube.Create(w.t.Context(), n); err != nil {
		w.t.Fatal(err)
	}
	return n
}

// ReconcileNode runs the trunk controller once for a node, failing the test on error.
func (w *World) ReconcileNode(name string) {
	w.t.Helper()
	if err := w.TryReconcileNode(name); err != nil {
		w.t.Fatalf("reconciling node %s: %v", name, err)
	}
}

// TryReconcileNode runs the trunk controller once for a node.
func (w *World) TryReconcileNode(name string) error {
	_, err := w.Trunks.Reconcile(w.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
	return err
}

// Node reads a node from the apiserver.
func (w *World) Node(name string) *corev1.Node {
	w.t.Helper()
	n := &corev1.Node{}
	if err := w.Kube.Get(w.t.Context(), types.NamespacedName{Name: name}, n); err != nil {
		w.t.Fatalf("getting node %s: %v", name, err)
	}
	return n
}

// Capacity is the node's advertised vpc.amazonaws.com/pod-eni, capacity and allocatable, ""
// when not advertised.
func (w *World) Capacity(name string) (capacity, allocatable string) {
	w.t.Helper()
	n := w.Node(name)
	for _, l := range []struct {
		list corev1.ResourceList
		into *string
	}{{n.Status.Capacity, &capacity}, {n.Status.Allocatable, &allocatable}} {
		if q, ok := l.list[v1beta1.ResourcePodENI]; ok {
			*l.into = q.String()
		}
	}
	return capacity, allocatable
}

// RequireCapacity fails the test unless the node advertises want, in capacity and allocatable.
func (w *World) RequireCapacity(name, want string) {
	w.t.Helper()
	if c, a := w.Capacity(name); c != want || a != want {
		w.t.Fatalf("node %s advertises pod-eni capacity %q, allocatable %q; want %q", name, c, a, want)
	}
}

// DeleteNode deletes a node.
func (w *World) DeleteNode(name string) {
	w.t.Helper()
	if err := w.Kube.Delete(w.t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		w.t.Fatal(err)
	}
}

// TrunkOf returns a node's trunk ENI, from EC2.
func (w *World) TrunkOf(nodeName string) cloud.NetworkInterface {
	w.t.Helper()
	for _, e := range w.EC2.NetworkInterfaces(cloud.InterfaceTypeTrunk) {
		if e.Tags[cloud.TagNode] == nodeName {
			return e
		}
	}
	w.t.Fatalf("node %s has no trunk in EC2", nodeName)
	return cloud.NetworkInterface{}
}

// ENI returns an ENI from EC2, failing the test when it does not exist.
func (w *World) ENI(id string) cloud.NetworkInterface {
	w.t.Helper()
	e, ok := w.EC2.NetworkInterface(id)
	if !ok {
		w.t.Fatalf("ENI %s does not exist", id)
	}
	return e
}

// Exists reports whether an ENI is still in EC2.
func (w *World) Exists(id string) bool {
	_, ok := w.EC2.NetworkInterface(id)
	return ok
}

// RequireENIs fails the test unless exactly the ENIs in want exist of those in all.
func (w *World) RequireENIs(step string, all []string, want ...string) {
	w.t.Helper()
	keep := map[string]bool{}
	for _, id := range want {
		keep[id] = true
	}
	for _, id := range all {
		if got := w.Exists(id); got != keep[id] {
			w.t.Errorf("%s: ENI %s exists = %v, want %v", step, id, got, keep[id])
		}
	}
}
