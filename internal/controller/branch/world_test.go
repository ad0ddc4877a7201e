package branch_test

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
	cluster      = "test-cluster"
	subnetID     = "subnet-0123456789abcdef0"
	instanceType = "m5.large"
	cooldown     = time.Minute
	interval     = 5 * time.Minute // the sweeper's default
)

var groups = []string{"sg-0aaaaaaaaaaaaaaaa", "sg-0bbbbbbbbbbbbbbbb"}

// world is podsg-controller's surroundings (a fake apiserver, the stateful fake EC2, a fake
// clock) and one incarnation of it: the trunk and branch controllers, the releaser and the
// sweeper on one store. Tests drive them synchronously, one reconcile or sweep at a time.
type world struct {
	t     *testing.T
	kube  client.Client
	ec2   *fake.EC2
	clock *clocktesting.FakeClock

	store    *inventory.Store
	trunks   *trunk.Controller
	pods     *branch.Controller
	releaser *branch.Releaser
	sweeper  *branch.Sweeper

	instances, podsMade int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	f := fake.New()
	f.AddSubnet(cloud.Subnet{ID: subnetID, VPCID: "vpc-0123456789abcdef0", CIDR: "10.0.0.0/19", AvailabilityZone: "us-west-2a"})
	for _, g := range append([]string{"sg-0000000000000node"}, groups...) {
		f.AddSecurityGroup(cloud.SecurityGroup{ID: g, VPCID: "vpc-0123456789abcdef0"})
	}
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).
		WithStatusSubresource(&corev1.Node{}, &corev1.Pod{}).Build()
	w := &world{t: t, kube: kube, ec2: f, clock: clocktesting.NewFakeClock(time.Now())}
	w.restart()
	return w
}

// restart replaces the controller by a fresh incarnation, which knows nothing but what it finds
// in the apiserver and EC2, as a new process after a crash or an upgrade.
func (w *world) restart() {
	tab := limits.MustDefault()
	tab.Set(instanceType, 4)
	rec := &events.FakeRecorder{} // drops events
	w.store = inventory.NewStore(nil)
	w.trunks = trunk.New(w.kube, w.ec2, w.store, tab, rec, w.clock, nil, trunk.Options{ClusterName: cluster, Cooldown: cooldown})
	w.pods = branch.New(w.kube, w.ec2, w.store, rec, w.clock, branch.Options{ClusterName: cluster, Cooldown: cooldown})
	w.releaser = branch.NewReleaser(w.ec2, w.store, w.clock, time.Second)
	w.sweeper = branch.NewSweeper(w.kube, w.ec2, w.store, w.clock, interval, cluster)
}

// addNode seeds an instance and its Node asking for a trunk, and reconciles it: it has a trunk.
func (w *world) addNode(name string) *corev1.Node {
	w.t.Helper()
	w.instances++
	id := fmt.Sprintf("i-%017x", w.instances)
	if err := w.ec2.AddInstance(fake.Instance{ID: id, Type: instanceType, SubnetID: subnetID,
		SecurityGroups: []string{"sg-0000000000000node"}, MaxBranches: 4}); err != nil {
		w.t.Fatal(err)
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name),
		Labels: map[string]string{v1beta1.LabelHasTrunkAttached: "false"}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + id}}
	if err := w.kube.Create(w.t.Context(), n); err != nil {
		w.t.Fatal(err)
	}
	w.reconcileNode(name)
	if _, ok := w.store.Trunk(name); !ok {
		w.t.Fatalf("node %s has no trunk after a reconcile", name)
	}
	return n
}

func (w *world) reconcileNode(name string) {
	w.t.Helper()
	if _, err := w.trunks.Reconcile(w.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Name: name}}); err != nil {
		w.t.Fatalf("reconciling node %s: %v", name, err)
	}
}

// addPod creates a pod bound to nodeName that admission gave the groups, and reconciles it:
// it has its branch ENI, whose id addPod returns.
func (w *world) addPod(name, nodeName string) (*corev1.Pod, string) {
	w.t.Helper()
	p := w.newPod(name, nodeName)
	w.reconcilePod(name)
	if err := w.kube.Get(w.t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
		w.t.Fatal(err)
	}
	enis, err := v1beta1.ParsePodENIs(p.Annotations[v1beta1.AnnotationPodENI])
	if err != nil || len(enis) != 1 {
		w.t.Fatalf("pod %s: annotation %q (%v), want one ENI", name, p.Annotations[v1beta1.AnnotationPodENI], err)
	}
	return p, enis[0].ENIID
}

// newPod creates a pod bound to nodeName that admission gave the groups, without reconciling.
func (w *world) newPod(name, nodeName string) *corev1.Pod {
	w.t.Helper()
	one := resource.MustParse("1")
	w.podsMade++ // pods of the same name have different UIDs, as in the apiserver
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(fmt.Sprintf("uid-%s-%d", name, w.podsMade)),
			Annotations: map[string]string{v1beta1.AnnotationSecurityGroups: policy.JoinGroups(groups)}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "app", Image: "pause",
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{v1beta1.ResourcePodENI: one},
				Limits:   corev1.ResourceList{v1beta1.ResourcePodENI: one},
			}}}},
	}
	if err := w.kube.Create(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) reconcilePod(name string) {
	w.t.Helper()
	if err := w.tryReconcilePod(name); err != nil {
		w.t.Fatalf("reconciling pod %s: %v", name, err)
	}
}

func (w *world) tryReconcilePod(name string) error {
	_, err := w.pods.Reconcile(w.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "default", Name: name}})
	return err
}

// deletePod deletes a pod as the kubelet would once it is done (grace period 0); the branch
// controller, if it ever reconciles the pod, releases its ENI and then the finalizer.
func (w *world) deletePod(name string) {
	w.t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}
	if err := w.kube.Delete(w.t.Context(), p, client.GracePeriodSeconds(0)); err != nil {
		w.t.Fatal(err)
	}
}

// losePod makes a pod vanish without the branch controller's knowledge: deleted while
// podsg-controller was down, its finalizer removed by someone else.
func (w *world) losePod(name string) {
	w.t.Helper()
	p := &corev1.Pod{}
	if err := w.kube.Get(w.t.Context(), types.NamespacedName{Namespace: "default", Name: name}, p); err != nil {
		w.t.Fatal(err)
	}
	p.Finalizers = nil
	if err := w.kube.Update(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
	w.deletePod(name)
}

func (w *world) deleteNode(name string) {
	w.t.Helper()
	if err := w.kube.Delete(w.t.Context(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		w.t.Fatal(err)
	}
}

// sweep runs one pass of the sweeper. It leaves the clock alone: the passes are an interval
// apart, but what the sweeper decides does not depend on the time, only on what it saw.
func (w *world) sweep() {
	w.t.Helper()
	if err := w.sweeper.Sweep(w.t.Context()); err != nil {
		w.t.Fatalf("sweep: %v", err)
	}
}

// exists reports whether an ENI is still in EC2.
func (w *world) exists(id string) bool {
	_, ok := w.ec2.NetworkInterface(id)
	return ok
}

// requireENIs fails the test unless exactly the ENIs in want exist of those in all.
func (w *world) requireENIs(step string, all []string, want ...string) {
	w.t.Helper()
	keep := map[string]bool{}
	for _, id := range want {
		keep[id] = true
	}
	for _, id := range all {
		if got := w.exists(id); got != keep[id] {
			w.t.Errorf("%s: ENI %s exists = %v, want %v", step, id, got, keep[id])
		}
	}
}

// trunkOf returns a node's trunk ENI id, from EC2.
func (w *world) trunkOf(nodeName string) cloud.NetworkInterface {
	w.t.Helper()
	for _, e := range w.ec2.NetworkInterfaces(cloud.InterfaceTypeTrunk) {
		if e.Tags[cloud.TagNode] == nodeName {
			return e
		}
	}
	w.t.Fatalf("node %s has no trunk in EC2", nodeName)
	return cloud.NetworkInterface{}
}
