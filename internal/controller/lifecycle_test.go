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
	"github.com/podsg/podsg/internal/testenv"
)

// TestSeedScenario follows the seed: a pod of a ServiceAccount selected by my-sg-policy gets a
// branch ENI with exactly the policy's groups on its node's trunk; capacity is honest through
// the cool-down; deleting the node frees everything. It runs against the fake EC2 and against
// the local VPC API through the real EC2 client.
func TestSeedScenario(t *testing.T) {
	for _, b := range backends {
		t.Run(string(b), func(t *testing.T) { testSeedScenario(t, b) })
	}
}

func testSeedScenario(t *testing.T, b backend) {
	const limit = 2
	w := startWith(t, options{backend: b, branchLimit: limit})
	ctx := t.Context()
	node, instanceID := w.addNode(t, "ip-10-0-0-10")
	w.waitCapacity(t, node.Name, limit)
	trunks := must[[]cloud.NetworkInterface](t)(w.enis(ctx, cloud.InterfaceTypeTrunk))
	if len(trunks) != 1 || trunks[0].InstanceID != instanceID || trunks[0].Description != "aws-k8s-trunk-eni" {
		t.Fatalf("want one trunk attached to the instance, got %+v", trunks)
	}
	nodeGroups := must[[]string](t)(w.nodeGroups(ctx, instanceID))
	if len(nodeGroups) == 0 || !slices.Equal(trunks[0].SecurityGroups, nodeGroups) || trunks[0].Tags[cloud.TagNode] != node.Name {
		t.Fatalf("trunk must carry the node's groups %v and tags: %+v", nodeGroups, trunks[0])
	}

	ns := controllertest.Namespace(t, w.c, "seed")
	controllertest.Create(t, w.c, w.policy(ns), controllertest.SeedServiceAccount(ns))
	controllertest.WaitForWebhook(t, w.c, ns)

	controllertest.Create(t, w.c, controllertest.Pod(ns, "backend-0", "rds-db-access"), controllertest.Pod(ns, "plain", ""))
	got := w.waitENI(t, ns, "backend-0")
	bound := &corev1.Pod{}
	if err := w.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "backend-0"}, bound); err != nil {
		t.Fatal(err)
	}
	if bound.Spec.NodeName != node.Name {
		t.Fatalf("pod bound to %q, want %s", bound.Spec.NodeName, node.Name)
	}
	eni, ok, err := w.eni(ctx, got.ENIID)
	if err != nil || !ok {
		t.Fatalf("annotated ENI %s does not exist in EC2 (%v)", got.ENIID, err)
	}
	if !slices.Equal(eni.SecurityGroups, w.groups) {
		t.Fatalf("branch ENI groups = %v, want exactly the policy's %v", eni.SecurityGroups, w.groups)
	}
	if eni.Type != cloud.InterfaceTypeBranch || eni.Tags[cloud.TagCluster] != cluster || eni.Tags[cloud.TagPodUID] != string(bound.UID) {
		t.Fatalf("branch ENI %+v must be a branch tagged for the cluster and the pod", eni)
	}
	if eni.MAC != got.IfAddress || eni.PrivateIP != got.PrivateIP || got.SubnetCIDR != w.subnetCIDR || got.VLANID != 1 {
		t.Fatalf("annotation %+v does not describe ENI %+v", got, eni)
	}
	assertAssociated(t, w, trunks[0].ID)
	for _, reason := range []string{"SecurityGroupRequested", "ResourceAllocated"} {
		testenv.Eventually(t, 10*time.Second, func(ctx context.Context) error { return w.hasEvent(ctx, ns, "backend-0", reason) })
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
		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			for _, typ := range []string{cloud.InterfaceTypeBranch, cloud.InterfaceTypeTrunk} {
				left, err := w.enis(ctx, typ)
				if err != nil {
					return err
				}
				if len(left) > 0 {
					return fmt.Errorf("%d %s ENIs left", len(left), typ)
				}
			}
			return nil
		})
	})
}

// testCapacity: with limit pods holding a branch, the next one stays Pending; deleting one
// frees its slot only after the cool-down, which the test steps on the fake clock; then the
// pending pod reuses the parked branch.
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
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error { return unschedulable(ctx, w.c, ns, extra) })

	freed := w.waitENI(t, ns, "backend-0")
	deletePod(t, w.c, ns, "backend-0")
	// Cooling down: the slot stays taken and the scheduler is told so.
	w.waitCapacity(t, nodeName, int64(limit-1))
	testenv.Consistently(t, time.Second, func(ctx context.Context) error { return unschedulable(ctx, w.c, ns, extra) })
	if _, ok, err := w.eni(ctx, freed.ENIID); err != nil || !ok {
		t.Fatalf("the ENI must survive its cool-down (%v)", err)
	}

	w.clock.Step(61 * time.Second)
	w.waitCapacity(t, nodeName, int64(limit))
	// After its cool-down the deleted pod's branch is parked, and the waiting pod, of the
	// same groups, gets it as it is: same ENI, address and VLAN.
	if got := w.waitENI(t, ns, extra); got != freed {
		t.Fatalf("the pending pod got %+v, want the deleted pod's parked branch %+v", got, freed)
	}
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
func assertAssociated(t testing.TB, w *world, trunkID string) {
	t.Helper()
	seen := map[int]string{}
	for _, a := range must[[]cloud.TrunkAssociation](t)(w.associations(t.Context())) {
		if a.TrunkID != trunkID {
			t.Fatalf("association %+v is not on trunk %s", a, trunkID)
		}
		if other, dup := seen[a.VLAN]; dup {
			t.Fatalf("VLAN %d used by %s and %s", a.VLAN, other, a.BranchID)
		}
		seen[a.VLAN] = a.BranchID
	}
	if branches := must[[]cloud.NetworkInterface](t)(w.enis(t.Context(), cloud.InterfaceTypeBranch)); len(seen) != len(branches) {
		t.Fatalf("every branch ENI must be associated: %v, branches %d", seen, len(branches))
	}
}

// waitWebhookCacheFor is controllertest.WaitForWebhook for pods of ServiceAccount sa, not the
// seed's: a policy selecting sa is served only once the webhook's cache has it.
func waitWebhookCacheFor(t testing.TB, w *world, ns, sa string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		p := controllertest.Pod(ns, "probe", sa)
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
