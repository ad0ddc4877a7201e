package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/testenv"
)

const (
	cluster  = "test-cluster"
	vpcID    = "vpc-0123456789abcdef0"
	subnetID = "subnet-0123456789abcdef0"
	zone     = "us-west-2a"
)

// world is a control plane with the real scheduler, podsg-controller on a manager, and the
// fake EC2 behind it.
type world struct {
	env   *testenv.Env
	c     client.Client
	ec2   *fake.EC2
	clock *clocktesting.FakeClock
	store *trunk.Store
}

func start(t *testing.T, branchLimit int) *world {
	t.Helper()
	env := testenv.Start(t, testenv.Options{Scheduler: true,
		Webhooks: envtest.WebhookInstallOptions{Paths: []string{"../../config/webhook"}}})
	f := fake.New()
	f.AddSubnet(cloud.Subnet{ID: subnetID, VPCID: vpcID, CIDR: "10.0.0.0/19", AvailabilityZone: zone})
	for _, g := range []string{controllertest.GroupA, controllertest.GroupB, "sg-0000000000000node"} {
		f.AddSecurityGroup(cloud.SecurityGroup{ID: g, VPCID: vpcID})
	}
	tab := limits.MustDefault()
	tab.Set("m5.large", branchLimit)
	w := &world{env: env, c: env.Client, ec2: f, clock: clocktesting.NewFakeClock(time.Now())}
	mgr := controllertest.NewManager(t, env)
	var err error
	w.store, err = controller.Setup(t.Context(), mgr, f,
		controller.Config{ClusterName: cluster, VPCID: vpcID, Limits: tab, Clock: w.clock, Webhooks: true,
			ReleaseInterval: time.Second, SweepInterval: time.Hour, RetryBase: 20 * time.Millisecond, RetryMax: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, mgr)
	return w
}

// addNode creates an instance in the fake and its Node, asking for a trunk, schedulable.
func (w *world) addNode(t *testing.T, name, instanceID string, maxBranches int) *corev1.Node {
	t.Helper()
	if err := w.ec2.AddInstance(fake.Instance{ID: instanceID, Type: "m5.large", SubnetID: subnetID,
		SecurityGroups: []string{"sg-0000000000000node"}, MaxENIs: 3, MaxBranches: maxBranches}); err != nil {
		t.Fatal(err)
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		v1beta1.LabelHasTrunkAttached: "false", corev1.LabelHostname: name}},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", zone, instanceID)}}
	controllertest.Create(t, w.c, n)
	// No kubelet runs: play its part, report resources and readiness, and drop the not-ready
	// taint the apiserver puts on new nodes.
	n.Spec.Taints = nil
	if err := w.c.Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("16Gi"), corev1.ResourcePods: resource.MustParse("110")}
	n.Status.Allocatable = n.Status.Capacity.DeepCopy()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
	if err := w.c.Status().Update(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	return n
}

// capacity returns the pod-eni allocatable of a node, -1 when absent.
func (w *world) capacity(ctx context.Context, name string) (int64, error) {
	n := &corev1.Node{}
	if err := w.c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		return 0, err
	}
	q, ok := n.Status.Allocatable[v1beta1.ResourcePodENI]
	if !ok {
		return -1, nil
	}
	return q.Value(), nil
}

func (w *world) waitCapacity(t *testing.T, name string, want int64) {
	t.Helper()
	controllertest.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		got, err := w.capacity(ctx, name)
		if err == nil && got != want {
			err = fmt.Errorf("node %s advertises %d pod-eni, want %d", name, got, want)
		}
		return err
	})
}

// waitENI waits until a pod is annotated and returns its single branch.
func (w *world) waitENI(t *testing.T, ns, name string) v1beta1.PodENI {
	t.Helper()
	var out v1beta1.PodENI
	controllertest.Eventually(t, 60*time.Second, func(ctx context.Context) error {
		p := &corev1.Pod{}
		if err := w.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
			return err
		}
		v, ok := p.Annotations[v1beta1.AnnotationPodENI]
		if !ok {
			return fmt.Errorf("pod %s/%s (node %q) not annotated yet", ns, name, p.Spec.NodeName)
		}
		enis, err := v1beta1.ParsePodENIs(v)
		if err != nil {
			return fmt.Errorf("annotation %q: %w", v, err)
		}
		if len(enis) != 1 {
			return fmt.Errorf("annotation %q: want one ENI, have %d", v, len(enis))
		}
		out = enis[0]
		return nil
	})
	return out
}

// hasEvent checks that an event with reason was recorded about an object.
func (w *world) hasEvent(ctx context.Context, ns, name, reason string) error {
	var list eventsv1.EventList
	if err := w.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			return nil
		}
	}
	return fmt.Errorf("no %s event about %s/%s among %d events", reason, ns, name, len(list.Items))
}

func deletePod(t *testing.T, c client.Client, ns, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	// No kubelet confirms termination, so delete at once, as the kubelet would after it.
	if err := c.Delete(t.Context(), p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
}
