package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
)

// TestSweeperNodeDeletedWhileDown wires the sweeper as podsg-controller runs it, on the
// apiserver and the local VPC API: a node and its pod are deleted while the controller is
// down, so no teardown runs; the next incarnation's sweeper frees that node's branch and trunk,
// and leaves the other node's alone. internal/controller/branch tests the sweeper's rules pass
// by pass; this checks the wiring (cache reads, the real EC2 client, the ticker).
func TestSweeperNodeDeletedWhileDown(t *testing.T) {
	w := startWith(t, options{backend: backendVPC, branchLimit: 4, noManager: true})
	ec2 := func(context.CancelFunc) controller.EC2 { return w.api }
	m := w.startManager(t, ec2)
	gone, _ := w.addNode(t, "ip-10-0-0-70")
	kept, _ := w.addNode(t, "ip-10-0-0-71")
	w.waitCapacity(t, gone.Name, 4)
	w.waitCapacity(t, kept.Name, 4)
	ns := controllertest.Namespace(t, w.c, "sweeper")
	controllertest.Create(t, w.c, w.policy(ns), controllertest.SeedServiceAccount(ns))
	controllertest.WaitForWebhook(t, w.c, ns)
	for name, nodeName := range map[string]string{"a": gone.Name, "b": kept.Name} {
		p := controllertest.Pod(ns, name, "rds-db-access")
		p.Spec.NodeName = nodeName
		controllertest.Create(t, w.c, p)
	}
	goneBranch, keptBranch := w.waitENI(t, ns, "a").ENIID, w.waitENI(t, ns, "b").ENIID
	trunkOf := map[string]string{}
	for _, tr := range must[[]cloud.NetworkInterface](t)(w.enis(t.Context(), cloud.InterfaceTypeTrunk)) {
		trunkOf[tr.Tags[cloud.TagNode]] = tr.ID
	}
	m.stop(t)

	// While podsg-controller is down, the node goes, and its pod (which the controller's
	// finalizer holds until the next incarnation lets it go).
	if err := w.c.Delete(t.Context(), gone); err != nil {
		t.Fatal(err)
	}
	deletePod(t, w.c, ns, "a")
	m = w.startManager(t, ec2)
	t.Cleanup(func() { m.stop(t) })

	freed := []string{goneBranch, trunkOf[gone.Name]}
	testenv.Eventually(t, time.Minute, func(ctx context.Context) error {
		w.clock.Step(time.Hour) // the sweeper's interval in these tests: one more pass
		for _, id := range freed {
			_, ok, err := w.eni(ctx, id)
			if err != nil {
				return err
			}
			if ok {
				return fmt.Errorf("ENI %s of deleted node %s still exists", id, gone.Name)
			}
		}
		return nil
	})
	for _, id := range []string{keptBranch, trunkOf[kept.Name]} {
		if _, ok, err := w.eni(t.Context(), id); err != nil || !ok {
			t.Errorf("ENI %s of node %s was freed (%v)", id, kept.Name, err)
		}
	}
	assertAssociated(t, w, trunkOf[kept.Name])
}
