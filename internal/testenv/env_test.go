package testenv_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// TestSchedulerHonoursPodENICapacity proves the harness runs the real kube-scheduler and
// kube-controller-manager: a node advertising 2 pod-eni takes two pods that request one each,
// and the third stays Pending with the message users see on EKS.
func TestSchedulerHonoursPodENICapacity(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Scheduler: true, ControllerManager: true})
	ctx := t.Context()
	c := env.Client

	// kube-controller-manager's serviceaccount controller gives every namespace its default SA.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "capacity"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 0, func(ctx context.Context) error {
		// kube-controller-manager creates it
		return c.Get(ctx, client.ObjectKey{Namespace: "capacity", Name: "default"}, &corev1.ServiceAccount{})
	})

	createReadyNode(t, c, "node-a", 2)
	for _, name := range []string{"p1", "p2", "p3"} {
		if err := c.Create(ctx, podENIPod("capacity", name)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 0, func(ctx context.Context) error {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace("capacity")); err != nil {
			return testenv.Abort(err)
		}
		bound, unschedulable := 0, ""
		for _, p := range pods.Items {
			if p.Spec.NodeName != "" {
				bound++
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled && cond.Reason == corev1.PodReasonUnschedulable {
					unschedulable = cond.Message
				}
			}
		}
		if bound != 2 || !strings.Contains(unschedulable, "Insufficient "+v1beta1.ResourcePodENI) {
			return fmt.Errorf("want two pods bound and one unschedulable for lack of %s; %d bound, unschedulable: %q", v1beta1.ResourcePodENI, bound, unschedulable)
		}
		return nil
	})
}

func createReadyNode(t *testing.T, c client.Client, name string, podENI int64) {
	t.Helper()
	ctx := t.Context()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:                          resource.MustParse("4"),
		corev1.ResourceMemory:                       resource.MustParse("16Gi"),
		corev1.ResourcePods:                         resource.MustParse("110"),
		corev1.ResourceName(v1beta1.ResourcePodENI): *resource.NewQuantity(podENI, resource.DecimalSI),
	}
	// kube-controller-manager updates new nodes too (taints, pod CIDR), so every write retries
	// on conflict from a fresh read.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Status.Capacity, node.Status.Allocatable = capacity, capacity
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "Test"}}
		return c.Status().Update(ctx, node)
	})
	if err != nil {
		t.Fatalf("reporting node %s ready: %v", name, err)
	}
	// The TaintNodesByCondition admission plugin taints every new node not-ready; a kubelet
	// would clear it by reporting Ready. We have no kubelet, so we clear it ourselves.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Spec.Taints = nil
		return c.Update(ctx, node)
	})
	if err != nil {
		t.Fatalf("removing the not-ready taint of %s: %v", name, err)
	}
}

func podENIPod(ns, name string) *corev1.Pod {
	one := corev1.ResourceList{corev1.ResourceName(v1beta1.ResourcePodENI): resource.MustParse("1")}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "podsg.local/pause:latest",
			Resources: corev1.ResourceRequirements{Requests: one, Limits: one},
		}}},
	}
}
