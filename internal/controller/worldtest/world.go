// Package worldtest is podsg-controller's surroundings for synchronous tests.
package worldtest

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/branch"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/testenv"
)

const (
	Cluster       = "test-Cluster"
	SubnetID      = "subnet-0123456789abcdef0"
	InstanceType  = "m5.large"
	Cooldown      = time.Minute
	SweepInterval = 5 * time.Minute // the sweeper's default
)

var Groups = []string{"sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"}

// world is podsg-controller's surroundings (a fake apiserver, the stateful fake EC2, a fake
// clock) and one incarnation of it: the trunk and branch controllers, the releaser and the
// sweeper on one store. Tests drive them synchronously, one reconcile or sweep at a time.
type World struct {
	t     *testing.T
	Kube  client.Client
	EC2   *fake.EC2
	Clock *clocktesting.FakeClock

	Store    *inventory.Store
	Trunks   *trunk.Controller
	Pods     *branch.Controller
	Releaser *branch.Releaser
	Sweeper  *branch.Sweeper

	instances, podsMade int
}

func New(t *testing.T) *World {
	t.Helper()
	f := fake.New()
	f.AddSubnet(cloud.Subnet{ID: SubnetID, VPCID: "vpc-0123456789abcdef0", CIDR: "10.0.0.0/19", AvailabilityZone: "us-west-2a"})
	for _, g := range append([]string{"sg-0000000000000node"}, Groups...) {
		f.AddSecurityGroup(cloud.SecurityGroup{ID: g, VPCID: "vpc-0123456789abcdef0"})
	}
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).
		WithStatusSubresource(&corev1.Node{}, &corev1.Pod{}).Build()
	w := &World{t: t, Kube: kube, EC2: f, Clock: clocktesting.NewFakeClock(time.Now())}
	w.Restart()
	return w
}

// restart replaces the controller by a fresh incarnation, which knows nothing but what it finds
// in the apiserver and EC2, as a new process after a crash or an upgrade.
func (w *World) Restart() {
	tab := limits.MustDefault()
	tab.Set(InstanceType, 4)
	rec := &events.FakeRecorder{} // drops events
	w.Store = inventory.NewStore(nil)
	w.Trunks = trunk.New(w.Kube, w.EC2, w.Store, tab, rec, w.Clock, nil, trunk.Options{ClusterName: Cluster, Cooldown: Cooldown})
	w.Pods = branch.New(w.Kube, w.EC2, w.Store, rec, w.Clock, branch.Options{ClusterName: Cluster, Cooldown: Cooldown})
	w.Releaser = branch.NewReleaser(w.EC2, w.Store, w.Clock, time.Second)
	w.Sweeper = branch.NewSweeper(w.Kube, w.EC2, w.Store, w.Clock, SweepInterval, Cluster)
}

// addNode seeds an instance and its Node asking for a trunk, and reconciles it: it has a trunk.
func (w *World) AddNode(name string) *corev1.Node {
	w.t.Helper()
	w.instances++
	id := fmt.Sprintf("i-%017x", w.instances)
	if err := w.EC2.AddInstance(fake.Instance{ID: id, Type: InstanceType, SubnetID: SubnetID,
		SecurityGroups: []string{"sg-0000000000000node"}, MaxBranches: 4}); err != nil {
		w.t.Fatal(err)
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name),
		Labels: map[string]string{v1beta1.LabelHasTrunkAttached: "false"}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + id}}
	if err := w.Kube.Create(w.t.Context(), n); err != nil {
		w.t.Fatal(err)
	}
	w.ReconcileNode(name)
	if _, ok := w.Store.Trunk(name); !ok {
		w.t.Fatalf("node %s has no trunk after a reconcile", name)
	}
	return n
}

func (w *World) ReconcileNode(name string) {
	w.t.Helper()
	if _, err := w.Trunks.Reconcile(w.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Name: name}}); err != nil {
		w.t.Fatalf("reconciling node %s: %v", name, err)
	}
}

// addPod creates a pod bound to nodeName that admission gave the Groups, and reconciles it:
// it has its branch ENI, whose id addPod returns.
func (w *World) AddPod(name, nodeName string) (*corev1.Pod, string) {
	w.t.Helper()
	p := w.NewPod(name, nodeName)
	w.ReconcilePod(name)
	if err := w.Kube.Get(w.t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
		w.t.Fatal(err)
	}
	enis, err := v1beta1.ParsePodENIs(p.Annotations[v1beta1.AnnotationPodENI])
	if err != nil || len(enis) != 1 {
		w.t.Fatalf("pod %s: annotation %q (%v), want one ENI", name, p.Annotations[v1beta1.AnnotationPodENI], err)
	}
	return p, enis[0].ENIID
}

// newPod creates a pod bound to nodeName that admission gave the Groups, without reconciling.
func (w *World) NewPod(name, nodeName string) *corev1.Pod {
	w.t.Helper()
	one := resource.MustParse("1")
	w.podsMade++ // pods of the same name have different UIDs, as in the apiserver
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(fmt.Sprintf("uid-%s-%d", name, w.podsMade)),
			Annotations: map[string]string{v1beta1.AnnotationSecurityGroups: policy.JoinGroups(Groups)}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "app", Image: "pause",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{v1beta1.ResourcePodENI: one},
				Limits:   corev1.ResourceList{v1beta1.ResourcePodENI: one},
			}}}},
	}
	if err := w.Kube.Create(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *World) ReconcilePod(name string) {
	w.t.Helper()
	if err := w.TryReconcilePod(name); err != nil {
		w.t.Fatalf("reconciling pod %s: %v", name, err)
	}
}

func (w *World) TryReconcilePod(name string) error {
	_, err := w.Pods.Reconcile(w.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: name}})
	return err
}

// deletePod deletes a pod as the kubelet would once it is done (grace period 0); the branch
// controller, if it ever reconciles the pod, releases its ENI and then the finalizer.
func (w *World) DeletePod(name string) {
	w.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	if err := w.Kube.Delete(w.t.Context(), p, client.GracePeriodSeconds(0)); err != nil {
		w.t.Fatal(err)
	}
}

// losePod makes a pod vanish without the branch controller's knowledge: deleted while
// podsg-controller was down, its finalizer removed by someone else.
func (w *World) LosePod(name string) {
	w.t.Helper()
	p := &corev1.Pod{}
	if err := w.Kube.Get(w.t.Context(), types.NamespacedName{Namespace: "default", Name: name}, p); err != nil {
		w.t.Fatal(err)
	}
	p.Finalizers = nil
	if err := w.Kube.Update(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
	w.DeletePod(name)
}

func (w *World) DeleteNode(name string) {
	w.t.Helper()
	if err := w.Kube.Delete(w.t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		w.t.Fatal(err)
	}
}

// sweep runs one pass of the sweeper. It leaves the clock alone: the passes are an SweepInterval
// apart, but what the sweeper decides does not depend on the time, only on what it saw.
func (w *World) Sweep() {
	w.t.Helper()
	if err := w.Sweeper.Sweep(w.t.Context()); err != nil {
		w.t.Fatalf("sweep: %v", err)
	}
}

// exists reports whether an ENI is still in EC2.
func (w *World) Exists(id string) bool {
	_, ok := w.EC2.NetworkInterface(id)
	return ok
}

// requireENIs fails the test unless exactly the ENIs in want exist of those in all.
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

// trunkOf returns a node's trunk ENI id, from EC2.
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
