package controller_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
)

// TestWarmPoolWiring wires the warmer as podsg-controller runs it, on the apiserver and the
// local VPC API behind the production client and its budget: a policy's warm target fills
// every trunk node with idle branches of its groups, and a pod then starts on one of them.
// internal/controller/warm tests the warmer's rules pass by pass.
func TestWarmPoolWiring(t *testing.T) {
	w := startWith(t, options{backend: backendVPC, branchLimit: 4, realClock: true, productionClient: true})
	nodes := []string{"ip-10-0-0-80", "ip-10-0-0-81"}
	for _, n := range nodes {
		w.addNode(t, n)
		w.waitCapacity(t, n, 4)
	}
	ns := controllertest.Namespace(t, w.c, "warm")
	p := w.policy(ns)
	two := int32(2)
	p.Spec.WarmBranchesPerNode = &two
	controllertest.Create(t, w.c, p, controllertest.SeedServiceAccount(ns))
	warm := map[string]bool{}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		branches, err := w.enis(ctx, cloud.InterfaceTypeBranch)
		if err != nil {
			return err
		}
		assocs, err := w.associations(ctx)
		if err != nil {
			return err
		}
		perNode := map[string]int{}
		for _, b := range branches {
			if b.Tags[cloud.TagPodName] != "" || !slices.Equal(b.SecurityGroups, w.groups) ||
				!slices.ContainsFunc(assocs, func(a cloud.TrunkAssociation) bool { return a.BranchID == b.ID }) {
				return fmt.Errorf("branch %s (groups %v, tags %v) is not a warm one", b.ID, b.SecurityGroups, b.Tags)
			}
			perNode[b.Tags[cloud.TagNode]]++
			warm[b.ID] = true
		}
		for _, n := range nodes {
			if perNode[n] != 2 {
				return fmt.Errorf("node %s has %d warm branches, want 2", n, perNode[n])
			}
		}
		return nil
	})
	controllertest.WaitForWebhook(t, w.c, ns)
	controllertest.Create(t, w.c, controllertest.Pod(ns, "backend-0", "rds-db-access"))
	if got := w.waitENI(t, ns, "backend-0"); !warm[got.ENIID] {
		t.Fatalf("the pod got %s, not one of the warm branches %v", got.ENIID, warm)
	}
}
