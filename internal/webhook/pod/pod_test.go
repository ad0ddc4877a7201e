package pod_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/testenv"
)

const controllerUser = "system:serviceaccount:podsg-system:podsg-controller"

func TestWebhooks(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Webhooks: envtest.WebhookInstallOptions{Paths: []string{"../../../config/webhook"}}})
	// Registered as podsg-controller registers them (webhook.Install), match conditions included.
	controllertest.PodWebhooks(t, env, podidentity.Options{})
	c := env.Client
	ns := controllertest.Namespace(t, c, "webhooks")
	other := controllertest.Namespace(t, c, "other")
	controllertest.Create(t, c, controllertest.SeedPolicy(ns), controllertest.SeedServiceAccount(ns))
	controllertest.Create(t, c, &v1beta1.SecurityGroupPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "by-label"},
		Spec: v1beta1.SecurityGroupPolicySpec{
			PodSelector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			SecurityGroups: v1beta1.GroupIDs{Groups: []string{controllertest.GroupB}},
		},
	})

	controllertest.WaitForWebhook(t, c, ns)

	t.Run("mutation", func(t *testing.T) { testMutation(t, c, ns, other) })
	t.Run("validation", func(t *testing.T) { testValidation(t, env, ns) })
}

func testMutation(t *testing.T, c client.Client, ns, other string) {
	withLabels := func(p *corev1.Pod, kv ...string) *corev1.Pod {
		p.Labels = map[string]string{kv[0]: kv[1]}
		return p
	}
	hostNet := controllertest.Pod(ns, "hostnet", "rds-db-access")
	hostNet.Spec.HostNetwork = true
	windows := controllertest.Pod(ns, "windows", "rds-db-access")
	windows.Spec.OS = &corev1.PodOS{Name: corev1.Windows}
	forged := controllertest.Pod(ns, "forged", "")
	forged.Annotations = map[string]string{v1beta1.AnnotationSecurityGroups: "sg-0ffffffffffffffff"}
	tests := map[string]struct {
		pod        *corev1.Pod
		wantGroups string
	}{
		"seed: selected by its ServiceAccount":         {controllertest.Pod(ns, "backend", "rds-db-access"), controllertest.GroupA + "," + controllertest.GroupB},
		"seed: another ServiceAccount is not selected": {controllertest.Pod(ns, "frontend", ""), ""},
		"missing ServiceAccount, pod selector applies": {withLabels(controllertest.Pod(other, "db", "does-not-exist"), "app", "db"), controllertest.GroupB},
		"missing ServiceAccount, not selected":         {controllertest.Pod(other, "web", "does-not-exist"), ""},
		"host network is skipped":                      {hostNet, ""},
		"windows is skipped":                           {windows, ""},
		"a user-written groups annotation is dropped":  {forged, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if err := c.Create(t.Context(), tc.pod); err != nil {
				t.Fatalf("creating pod: %v", err)
			}
			got := tc.pod.Annotations[v1beta1.AnnotationSecurityGroups]
			if got != tc.wantGroups {
				t.Fatalf("groups annotation = %q, want %q", got, tc.wantGroups)
			}
			req, hasReq := tc.pod.Spec.Containers[0].Resources.Requests[v1beta1.ResourcePodENI]
			lim, hasLim := tc.pod.Spec.Containers[0].Resources.Limits[v1beta1.ResourcePodENI]
			if want := tc.wantGroups != ""; hasReq != want || hasLim != want {
				t.Fatalf("pod-eni request %v / limit %v, want both %v", hasReq, hasLim, want)
			}
			if hasReq && (req.Value() != 1 || lim.Value() != 1) {
				t.Fatalf("pod-eni request %s limit %s, want 1", req.String(), lim.String())
			}
		})
	}
}

func testValidation(t *testing.T, env *testenv.Env, ns string) {
	c := env.Client
	ctx := t.Context()
	asController := impersonate(t, env, controllerUser)

	calls := validatingCalls(t, env)
	p := controllertest.Pod(ns, "claims-eni", "")
	p.Annotations = map[string]string{v1beta1.AnnotationPodENI: `[{"eniId":"eni-0123"}]`}
	if err := c.Create(ctx, p); err == nil || !strings.Contains(err.Error(), "set by podsg-controller only") {
		t.Fatalf("creating a pod with %s: want denial, got %v", v1beta1.AnnotationPodENI, err)
	}
	if now := validatingCalls(t, env); now != calls+1 {
		t.Fatalf("the apiserver called %s %v times for a pod created with %s, want once", validatingWebhook, now-calls, v1beta1.AnnotationPodENI)
	}

	// The apiserver asks only when the webhook could deny (the match conditions of
	// webhook.Install): not for a pod created without the annotation, an update that leaves
	// both alone, or the controller's own writes; the mutating webhook's groups annotation on
	// creation is its own, and calls none either.
	calls = validatingCalls(t, env)
	p = controllertest.Pod(ns, "victim", "rds-db-access")
	controllertest.Create(t, c, p)
	if err := c.Patch(ctx, p.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"before":"denials"}}}`))); err != nil {
		t.Fatalf("updating a label: %v", err)
	}
	controllerPatch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"[]"}}}`, v1beta1.AnnotationPodENI))
	if err := asController.Patch(ctx, p.DeepCopy(), controllerPatch); err != nil {
		t.Fatalf("controller setting %s: %v", v1beta1.AnnotationPodENI, err)
	}
	if now := validatingCalls(t, env); now != calls {
		t.Fatalf("the apiserver called %s %v times for requests it cannot deny, want none", validatingWebhook, now-calls)
	}
	// Being an admin is not enough: only the controller's user name counts.
	const otherAdmin = "another-admin"
	asOtherAdmin := impersonate(t, env, otherAdmin)
	for _, key := range []string{v1beta1.AnnotationPodENI, v1beta1.AnnotationSecurityGroups} {
		patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"x"}}}`, key))
		if err := c.Patch(ctx, p.DeepCopy(), patch); err == nil || !strings.Contains(err.Error(), "set by podsg-controller only") {
			t.Fatalf("user changing %s: want denial, got %v", key, err)
		}
		// The denial names who may write and who tried: what tells a misconfigured controller
		// (running as another user than it was told) from an intruder.
		err := asOtherAdmin.Patch(ctx, p.DeepCopy(), patch)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("set by podsg-controller only (user %q), not by user %q", controllerUser, otherAdmin)) {
			t.Fatalf("%s changing %s: want a denial naming both users, got %v", otherAdmin, key, err)
		}
		if err := asController.Patch(ctx, p.DeepCopy(), patch); err != nil {
			t.Fatalf("controller changing %s: %v", key, err)
		}
	}
	// Other updates stay allowed. Removing an annotation is a change too.
	if err := c.Patch(ctx, p.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"labels":{"x":"y"}}}`))); err != nil {
		t.Fatalf("updating a label: %v", err)
	}
	remove := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"metadata":{"annotations":{%q:null}}}`, v1beta1.AnnotationPodENI))
	if err := c.Patch(ctx, p.DeepCopy(), remove); err == nil || !strings.Contains(err.Error(), "set by podsg-controller only") {
		t.Fatalf("user removing %s: want denial, got %v", v1beta1.AnnotationPodENI, err)
	}
}

const validatingWebhook = "vpod.podsg.io"

// validatingCalls is how many times the apiserver has called the validating webhook, by its
// own admission metrics.
func validatingCalls(t *testing.T, env *testenv.Env) float64 {
	t.Helper()
	data, err := kubernetes.NewForConfigOrDie(env.Config).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("reading the apiserver's metrics: %v", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parsing the apiserver's metrics: %v", err)
	}
	total := 0.0
	if mf := mfs["apiserver_admission_webhook_admission_duration_seconds"]; mf != nil {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == validatingWebhook {
					total += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return total
}

func impersonate(t *testing.T, env *testenv.Env, user string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters"}}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
