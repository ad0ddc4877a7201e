package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/controllertest"
)

// TestSeedScenario follows the seed: a pod of a ServiceAccount selected by my-sg-policy gets a
// branch ENI with exactly the policy's groups on its node's trunk; capacity is honest through
// the cool-down; deleting the node frees everything.
func TestSeedScenario(t *testing.T) {
	const limit = 2
	w := start(t, limit)
	ctx := t.Context()
	node := w.addNode(t, "ip-10-0-0-10", "i-0123456789abcdef0", limit)
	w.waitCapacity(t, node.Name, limit)
	trunks := w.ec2.NetworkInterfaces(cloud.InterfaceTypeTrunk)
	if len(trunks) != 1 || trunks[0].InstanceID != "i-0123456789abcdef0" || trunks[0].Description != "aws-k8s-trunk-eni" {
		t.Fatalf("want one trunk attached to the instance, got %+v", trunks)
	}
	if !slices.Equal(trunks[0].SecurityGroups, []string{"sg-0000000000000node"}) || trunks[0].Tags[cloud.TagNode] != node.Name {
		t.Fatalf("trunk must carry the node's groups and tags: %+v", trunks[0])
	}

	ns := controllertest.Namespace(t, w.c, "seed")
	controllertest.Create(t, w.c, controllertest.SeedPolicy(ns), controllertest.SeedServiceAccount(ns))
	waitWebhookCache(t, w, ns)

	controllertest.Create(t, w.c, controllertest.Pod(ns, "backend-0", "rds-db-access"), controllertest.Pod(ns, "plain", ""))
	got := w.waitENI(t, ns, "backend-0")
	eni, ok := w.ec2.NetworkInterface(got.ENIID)
	if !ok {
		t.Fatalf("annotated ENI %s does not exist in EC2", got.ENIID)
	}
	if !slices.Equal(eni.SecurityGroups, []string{controllertest.GroupA, controllertest.GroupB}) {
		t.Fatalf("branch ENI groups = %v, want exactly the policy's", eni.SecurityGroups)
	}
	if eni.MAC != got.IfAddress || eni.PrivateIP != got.PrivateIP || got.SubnetCIDR != "10.0.0.0/19" || got.VLANID != 1 {
		t.Fatalf("annotation %+v does not describe ENI %+v", got, eni)
	}
	assertAssociated(t, w, trunks[0].ID)
	for _, reason := range []string{"SecurityGroupRequested", "ResourceAllocated"} {
		controllertest.Eventually(t, 10*time.Second, func(ctx context.Context) error { return w.hasEvent(ctx, ns, "backend-0", reason) })
	}
	plain := &corev1.Pod{}
	if err := w.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "plain"}, plain); err != nil {
		t.Fatal(err)
	}
	if _, ok := plain.Spec.Containers[0].Resources.Requests[v1beta1.ResourcePodENI]; ok || plain.Annotations[v1beta1.AnnotationSecurityGroups] != "" {
		t.Fatalf("a pod of another ServiceAccount must not be mutated: %+v", plain.Spec.Containers[0].Resources)
	}

	t.Run("capacity", func(t *testing.T) { testCapacity(t, w, ns, node.Name, limit) })
	t.Run("node deletion frees everything", func(t *testing.T) {
		if err := w.c.Delete(ctx, node); err != nil {
			t.Fatal(err)
		}
		controllertest.Eventually(t, 30*time.Second, func(context.Context) error {
			if left := w.ec2.NetworkInterfaces(cloud.InterfaceTypeBranch); len(left) > 0 {
				return fmt.Errorf("%d branch ENIs left", len(left))
			}
			if left := w.ec2.NetworkInterfaces(cloud.InterfaceTypeTrunk); len(left) > 0 {
				return fmt.Errorf("%d trunk ENIs left", len(left))
			}
			return nil
		})
	})
}

// testCapacity: with limit pods holding a branch, the next one stays Pending; deleting one
// frees its slot only after the cool-down, which the test steps on the fake clock.
func testCapacity(t *testing.T, w *world, ns, nodeName string, limit int) {
	ctx := t.Context()
	for i := 1; i < limit; i++ {
		controllertest.Create(t, w.c, controllertest.Pod(ns, fmt.Sprint("backend-", i), "rds-db-access"))
		w.waitENI(t, ns, fmt.Sprint("backend-", i))
	}
	vlans := map[int]bool{}
	for i := range limit {
		vlans[w.waitENI(t, ns, fmt.Sprint("backend-", i)).VLANID] = true
	}
	if len(vlans) != limit {
		t.Fatalf("VLANs must be unique per trunk, got %v", vlans)
	}
	extra := fmt.Sprint("backend-", limit)
	controllertest.Create(t, w.c, controllertest.Pod(ns, extra, "rds-db-access"))
	controllertest.Eventually(t, 30*time.Second, func(ctx context.Context) error { return unschedulable(ctx, w.c, ns, extra) })

	freed := w.waitENI(t, ns, "backend-0")
	deletePod(t, w.c, ns, "backend-0")
	// Cooling down: the slot stays taken and the scheduler is told so.
	w.waitCapacity(t, nodeName, int64(limit-1))
	controllertest.Consistently(t, time.Second, func(ctx context.Context) error { return unschedulable(ctx, w.c, ns, extra) })
	if _, ok := w.ec2.NetworkInterface(freed.ENIID); !ok {
		t.Fatal("the ENI must survive its cool-down")
	}

	w.clock.Step(61 * time.Second)
	w.waitCapacity(t, nodeName, int64(limit))
	got := w.waitENI(t, ns, extra)
	if _, ok := w.ec2.NetworkInterface(freed.ENIID); ok {
		t.Fatalf("ENI %s of the deleted pod must be gone after the cool-down", freed.ENIID)
	}
	if got.VLANID != freed.VLANID {
		t.Fatalf("the freed VLAN %d should be reused (lowest free), got %d", freed.VLANID, got.VLANID)
	}
	_ = ctx
}

func unschedulable(ctx context.Context, c client.Client, ns, name string) error {
	p := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		return err
	}
	if p.Spec.NodeName != "" {
		return fmt.Errorf("pod %s was scheduled to %s", name, p.Spec.NodeName)
	}
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse &&
			strings.Contains(cond.Message, "Insufficient "+v1beta1.ResourcePodENI) {
			return nil
		}
	}
	return fmt.Errorf("pod %s is not (yet) unschedulable for lack of %s: %+v", name, v1beta1.ResourcePodENI, p.Status.Conditions)
}

// assertAssociated checks every branch ENI is associated with the trunk under its own VLAN.
func assertAssociated(t *testing.T, w *world, trunkID string) {
	t.Helper()
	seen := map[int]string{}
	for _, a := range w.ec2.Associations() {
		if a.TrunkID != trunkID {
			t.Fatalf("association %+v is not on trunk %s", a, trunkID)
		}
		if other, dup := seen[a.VLAN]; dup {
			t.Fatalf("VLAN %d used by %s and %s", a.VLAN, other, a.BranchID)
		}
		seen[a.VLAN] = a.BranchID
	}
	if len(seen) != len(w.ec2.NetworkInterfaces(cloud.InterfaceTypeBranch)) {
		t.Fatalf("every branch ENI must be associated: %v", seen)
	}
}

// waitWebhookCache waits until the webhook, which serves from the manager's cache, mutates
// pods of the seed ServiceAccount in ns.
func waitWebhookCache(t *testing.T, w *world, ns string) {
	t.Helper()
	controllertest.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		p := controllertest.Pod(ns, "probe", "rds-db-access")
		p.Spec.NodeName = "nowhere" // never allocated for: no such trunk node
		if err := w.c.Create(ctx, p); err != nil {
			return err
		}
		defer func() { _ = w.c.Delete(ctx, p, client.GracePeriodSeconds(0)) }()
		if p.Annotations[v1beta1.AnnotationSecurityGroups] == "" {
			return fmt.Errorf("not mutated yet")
		}
		return nil
	})
}
