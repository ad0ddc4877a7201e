package controller_test

import (
	"fmt"
	"testing"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/controllertest"
)

// TestFaults: throttling storms, 5xx and lost responses on every mutating step still end
// with each pod annotated with exactly one ENI, and no ENI that no pod names.
func TestFaults(t *testing.T) {
	const pods = 6
	w := start(t, 9)
	w.ec2.ThrottleStorm(5)
	w.ec2.NextErrorAfterEffect(fake.ActionCreateNetworkInterface, fake.Unavailable(fake.ActionCreateNetworkInterface)) // the trunk
	node, _ := w.addNode(t, "ip-10-0-0-20")
	w.waitCapacity(t, node.Name, 9)

	ns := controllertest.Namespace(t, w.c, "faults")
	controllertest.Create(t, w.c, controllertest.SeedPolicy(ns), controllertest.SeedServiceAccount(ns))
	controllertest.WaitForWebhook(t, w.c, ns)

	for _, action := range []string{fake.ActionCreateNetworkInterface, fake.ActionAssociateTrunkInterface} {
		w.ec2.NextErrorAfterEffect(action, fake.Unavailable(action))
		w.ec2.NextErrorAfterEffect(action, fake.Throttled(action))
		w.ec2.FailEvery(action, 3, fake.Unavailable(action))
	}
	w.ec2.ThrottleStorm(10)
	for i := range pods {
		controllertest.Create(t, w.c, controllertest.Pod(ns, fmt.Sprint("backend-", i), "rds-db-access"))
	}
	named := map[string]bool{}
	vlans := map[int]bool{}
	for i := range pods {
		d := w.waitENI(t, ns, fmt.Sprint("backend-", i))
		if named[d.ENIID] || vlans[d.VLANID] {
			t.Fatalf("ENI %s / VLAN %d given to two pods", d.ENIID, d.VLANID)
		}
		named[d.ENIID], vlans[d.VLANID] = true, true
	}
	for _, e := range w.ec2.NetworkInterfaces(cloud.InterfaceTypeBranch) {
		if !named[e.ID] {
			t.Errorf("orphan branch ENI %s (tags %v)", e.ID, e.Tags)
		}
	}
	if n := len(w.ec2.NetworkInterfaces(cloud.InterfaceTypeTrunk)); n != 1 {
		t.Errorf("want one trunk despite the lost create response, got %d", n)
	}
	assertAssociated(t, w, w.ec2.NetworkInterfaces(cloud.InterfaceTypeTrunk)[0].ID)
}
