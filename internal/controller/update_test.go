package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/testenv"
)

// TestLiveGroupsUpdate wires live updates as podsg-controller runs them: a policy with
// updatePolicy InPlace changes its groups, and the running pods it selects get them on their
// branch ENIs (same ENI, no restart), with an event each; the policy's status counts them,
// and the pod that runs on its node's ENI as needing recreation. internal/controller/branch
// tests the updater's rules reconcile by reconcile.
func TestLiveGroupsUpdate(t *testing.T) {
	const pods = 3
	w := start(t, 9)
	node, _ := w.addNode(t, "ip-10-0-0-90")
	w.waitCapacity(t, node.Name, 9)
	ns := controllertest.Namespace(t, w.c, "live")
	early := controllertest.Pod(ns, "early", "")
	early.Labels = map[string]string{"app": "web"}
	early.Spec.NodeName = node.Name
	controllertest.Create(t, w.c, early) // before any policy: on its node's ENI
	p := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			SecurityGroups: v1beta1.GroupIDs{Groups: w.groups}, UpdatePolicy: v1beta1.UpdatePolicyInPlace}}
	controllertest.Create(t, w.c, p)
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		probe := controllertest.Pod(ns, "probe", "")
		probe.Labels, probe.Spec.NodeName = map[string]string{"app": "web"}, "nowhere"
		if err := w.c.Create(ctx, probe); err != nil {
			return err
		}
		defer func() { _ = w.c.Delete(ctx, probe, client.GracePeriodSeconds(0)) }()
		if probe.Annotations[v1beta1.AnnotationSecurityGroups] == "" {
			return fmt.Errorf("the webhook does not see policy web yet")
		}
		return nil
	})
	enis := map[string]string{}
	for i := range pods {
		pod := controllertest.Pod(ns, fmt.Sprint("web-", i), "")
		pod.Labels = map[string]string{"app": "web"}
		controllertest.Create(t, w.c, pod)
		enis[pod.Name] = w.waitENI(t, ns, pod.Name).ENIID
	}

	now := []string{w.groups[0]}
	if err := w.c.Get(t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
		t.Fatal(err)
	}
	// A patch, not an update: the status controller writes the policy's status at any time,
	// and an update from this read would then fail on its stale resourceVersion.
	before := p.DeepCopy()
	p.Spec.SecurityGroups.Groups = now
	if err := w.c.Patch(t.Context(), p, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		for name, id := range enis {
			pod := &corev1.Pod{}
			if err := w.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
				return err
			}
			eni, ok, err := w.eni(ctx, id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("branch %s of %s is gone", id, name)
			}
			if !inventory.SameGroups(eni.SecurityGroups, now) {
				return fmt.Errorf("branch %s of %s carries %v, want %v", id, name, eni.SecurityGroups, now)
			}
			if got := policy.SplitGroups(pod.Annotations[v1beta1.AnnotationSecurityGroups]); !inventory.SameGroups(got, now) {
				return fmt.Errorf("pod %s records groups %v", name, got)
			}
			if enis, _, _ := podENIs(pod); len(enis) != 1 || enis[0].ENIID != id {
				return fmt.Errorf("pod %s is annotated with %+v, want its branch %s", name, enis, id)
			}
			if err := w.hasEvent(ctx, ns, name, v1beta1.ReasonSecurityGroupsUpdated); err != nil {
				return err
			}
		}
		got := &v1beta1.SecurityGroupPolicy{}
		if err := w.c.Get(ctx, client.ObjectKeyFromObject(p), got); err != nil {
			return err
		}
		if want := (v1beta1.PodGroupsStatus{Current: pods, NeedRecreation: 1}); got.Status.Pods == nil || *got.Status.Pods != want {
			return fmt.Errorf("status.pods = %+v, want %+v", got.Status.Pods, want)
		}
		return nil
	})
}
