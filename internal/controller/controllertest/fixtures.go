package controllertest

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// Group ids of the seed policy; tests create them in the fake EC2.
const (
	GroupA = "sg-0aaaaaaaaaaaaaaaa"
	GroupB = "sg-0bbbbbbbbbbbbbbbb"
)

// SeedPolicy is the policy of the seed scenario: ServiceAccounts labelled role=backend get
// GroupA and GroupB.
func SeedPolicy(ns string) *v1beta1.SecurityGroupPolicy {
	return &v1beta1.SecurityGroupPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-sg-policy"},
		Spec: v1beta1.SecurityGroupPolicySpec{
			ServiceAccountSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "backend"}},
			SecurityGroups:         v1beta1.GroupIDs{Groups: []string{GroupA, GroupB}},
		},
	}
}

// SeedServiceAccount is the ServiceAccount the seed policy selects.
func SeedServiceAccount(ns string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{
		Namespace: ns, Name: "rds-db-access", Labels: map[string]string{"role": "backend"},
	}}
}

// Pod returns a single-container pod running as sa ("" for none).
func Pod(ns, name, sa string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{
			ServiceAccountName:           sa,
			AutomountServiceAccountToken: new(false),
			Containers:                   []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}},
		},
	}
}

// Namespace creates a namespace for one test.
func Namespace(t testing.TB, c client.Client, name string) string {
	t.Helper()
	if err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

// Create creates objects, failing the test on error.
func Create(t testing.TB, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(t.Context(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// WaitForWebhook waits until the pod webhook, which serves from its manager's cache, mutates a
// pod of the seed ServiceAccount in ns: the webhook server and the policy cache come up
// asynchronously, and a policy created just before is seen only once the cache has it. The probe
// pod names a node that does not exist, so no controller allocates for it.
func WaitForWebhook(t testing.TB, c client.Client, ns string) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		p := Pod(ns, "webhook-probe", "rds-db-access")
		p.Spec.NodeName = "nowhere"
		if err := c.Create(ctx, p); err != nil {
			return err
		}
		defer func() { _ = c.Delete(ctx, p, client.GracePeriodSeconds(0)) }()
		if p.Annotations[v1beta1.AnnotationSecurityGroups] == "" {
			return errors.New("the webhook has not mutated a pod of the seed ServiceAccount yet")
		}
		return nil
	})
}
