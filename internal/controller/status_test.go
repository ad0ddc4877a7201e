package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
)

// TestPolicyStatus: a policy reports matched pods and readiness; one naming a group that
// does not exist says which, in a condition and a Warning event.
func TestPolicyStatus(t *testing.T) {
	w := start(t, 9)
	ns := controllertest.Namespace(t, w.c, "status")
	missing := "sg-0cccccccccccccccc"
	bad := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "typo"},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{},
			SecurityGroups: v1beta1.GroupIDs{Groups: []string{controllertest.GroupA, missing}}}}
	controllertest.Create(t, w.c, controllertest.SeedPolicy(ns), controllertest.SeedServiceAccount(ns), bad)
	p := controllertest.Pod(ns, "backend", "rds-db-access")
	p.Spec.NodeName = "nowhere"
	controllertest.Create(t, w.c, p)

	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		return policyStatus(ctx, w.c, ns, "my-sg-policy", 1, metav1.ConditionTrue, "")
	})
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		return policyStatus(ctx, w.c, ns, "typo", 1, metav1.ConditionFalse, missing)
	})
	testenv.Eventually(t, 10*time.Second, func(ctx context.Context) error { return w.hasEvent(ctx, ns, "typo", "GroupsNotFound") })
}

func policyStatus(ctx context.Context, c client.Client, ns, name string, matched int32, ready metav1.ConditionStatus, mention string) error {
	p := &v1beta1.SecurityGroupPolicy{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		return err
	}
	r := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionReady)
	g := meta.FindStatusCondition(p.Status.Conditions, v1beta1.ConditionGroupsFound)
	if p.Status.MatchedPods != matched || r == nil || r.Status != ready || g == nil || !strings.Contains(g.Message, mention) ||
		p.Status.ObservedGeneration != p.Generation {
		return fmt.Errorf("policy %s status = %+v", name, p.Status)
	}
	return nil
}
