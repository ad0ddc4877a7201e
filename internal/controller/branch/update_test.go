package branch_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/worldtest"
	"github.com/podsg/podsg/internal/policy"
)

// Live updates: when a policy with updatePolicy InPlace changes its groups, the running pods
// it selects get their branch ENI's groups changed in place, one call each.

// changeGroups sets the policy's groups and update policy.
func changeGroups(t *testing.T, w *worldtest.World, p *v1beta1.SecurityGroupPolicy, groups []string, up v1beta1.UpdatePolicy) {
	t.Helper()
	p.Spec.SecurityGroups.Groups, p.Spec.UpdatePolicy = groups, up
	if err := w.Kube.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
}

func TestGroupsUpdatedInPlace(t *testing.T) {
	tests := map[string]struct {
		update     v1beta1.UpdatePolicy
		groups     []string
		wantGroups []string // the branch's afterwards
		wantCalls  int
	}{
		"InPlace":            {update: v1beta1.UpdatePolicyInPlace, groups: worldtest.OtherGroups, wantGroups: worldtest.OtherGroups, wantCalls: 1},
		"None: AWS's way":    {update: v1beta1.UpdatePolicyNone, groups: worldtest.OtherGroups, wantGroups: worldtest.Groups},
		"unset: AWS's way":   {groups: worldtest.OtherGroups, wantGroups: worldtest.Groups},
		"InPlace, no change": {update: v1beta1.UpdatePolicyInPlace, groups: []string{worldtest.Groups[1], worldtest.Groups[0]}, wantGroups: worldtest.Groups},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			w := worldtest.New(t)
			w.AddNode("n1")
			p := w.AddPolicy("p", worldtest.Groups, nil)
			_, eni := w.AddPod("web", "n1")
			changeGroups(t, w, p, tc.groups, tc.update)
			before := w.Mutations()
			w.UpdateGroups("web")
			w.UpdateGroups("web") // again: nothing more to do
			if n := w.Mutations() - before; n != tc.wantCalls {
				t.Fatalf("%d EC2 mutations, want %d", n, tc.wantCalls)
			}
			if got := w.ENI(eni).SecurityGroups; !inventory.SameGroups(got, tc.wantGroups) {
				t.Fatalf("the branch carries %v, want %v", got, tc.wantGroups)
			}
			if got := policy.SplitGroups(w.Pod("web").Annotations[v1beta1.AnnotationSecurityGroups]); !inventory.SameGroups(got, tc.wantGroups) {
				t.Fatalf("the pod's groups annotation says %v, want %v", got, tc.wantGroups)
			}
			if tc.wantCalls > 0 {
				w.RequireEvent("default/web", v1beta1.ReasonSecurityGroupsUpdated)
			}
			if got := w.Annotated("web"); got.ENIID != eni {
				t.Fatalf("the pod's branch is %s now, want %s: it is not recreated", got.ENIID, eni)
			}
		})
	}
}

// TestUpdatedBranchParkedByItsNewGroups: once the pod goes, its branch is parked by the groups
// it carries now: a pod with those groups takes it with no call.
func TestUpdatedBranchParkedByItsNewGroups(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	p := w.AddPolicy("p", worldtest.Groups, nil)
	_, eni := w.AddPod("web", "n1")
	changeGroups(t, w, p, worldtest.OtherGroups, v1beta1.UpdatePolicyInPlace)
	w.UpdateGroups("web")
	w.DeletePod("web")
	w.ReconcilePod("web")
	w.Release(worldtest.Cooldown)
	before := w.Mutations()
	w.NewPodWithGroups("next", "n1", worldtest.OtherGroups)
	w.ReconcilePod("next")
	if got := w.Annotated("next"); got.ENIID != eni || w.Mutations() != before {
		t.Fatalf("the next pod got %s with %d calls, want the updated %s with none", got.ENIID, w.Mutations()-before, eni)
	}
}

// TestGroupsUpdateRetried: a failed change is a Warning event and retried; a pod the process
// has not adopted yet is looked at again, without a call.
func TestGroupsUpdateRetried(t *testing.T) {
	w := worldtest.New(t)
	w.AddNode("n1")
	p := w.AddPolicy("p", worldtest.Groups, nil)
	_, eni := w.AddPod("web", "n1")
	changeGroups(t, w, p, worldtest.OtherGroups, v1beta1.UpdatePolicyInPlace)
	w.EC2.NextError(fake.ActionModifyNetworkInterfaceAttribute, fake.Throttled(fake.ActionModifyNetworkInterfaceAttribute))
	if _, err := w.Updater.Reconcile(t.Context(), request("web")); err == nil {
		t.Fatal("want the throttled call's error")
	}
	w.RequireEvent("default/web", v1beta1.ReasonSecurityGroupsUpdateFailed)
	w.Restart() // a fresh process, before its trunk controller adopted the node
	before := w.Mutations()
	if res := w.UpdateGroups("web"); res.RequeueAfter <= 0 || w.Mutations() != before {
		t.Fatalf("result %+v after %d calls, want a requeue and none", res, w.Mutations()-before)
	}
	w.ReconcileNode("n1")
	w.UpdateGroups("web")
	if got := w.ENI(eni).SecurityGroups; !inventory.SameGroups(got, worldtest.OtherGroups) {
		t.Fatalf("the branch carries %v after the retry", got)
	}
}

func request(name string) reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: worldtest.Namespace, Name: name}}
}
