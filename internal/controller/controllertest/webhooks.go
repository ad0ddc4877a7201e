package controllertest

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/webhook"
	"github.com/podsg/podsg/internal/webhook/pod"
)

// WebhookNamespace is podsg-controller's namespace in PodWebhooks (exempt from its webhooks,
// as in a cluster).
const WebhookNamespace = "podsg-system"

// PodWebhooks serves podsg-controller's pod webhooks (security groups, and pod identity with
// identity's settings) on env until the test ends, registered exactly as podsg-controller
// registers them (webhook.Install: by URL, with its namespaceSelectors and the objectSelector
// of AWS's skip label) in place of the generated configurations envtest installed: env must
// be started with Options.Webhooks from config/webhook, which also gives the serving port and
// certificate directory. It returns the Endpoint it installed, for a test that installs it
// again with other settings. The server starts asynchronously and the webhooks fail closed:
// wait for a first mutation before relying on them.
func PodWebhooks(t testing.TB, env *testenv.Env, identity podidentity.Options) webhook.Endpoint {
	t.Helper()
	c, ctx := env.Client, t.Context()
	for _, obj := range []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mutating-webhook-configuration"}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "validating-webhook-configuration"}},
	} {
		if err := client.IgnoreNotFound(c.Delete(ctx, obj)); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.IgnoreAlreadyExists(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: WebhookNamespace}})); err != nil {
		t.Fatal(err)
	}
	w := env.Webhooks
	e := webhook.Endpoint{Namespace: WebhookNamespace, Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir,
		ControllerUsername: ControllerUsername}
	if err := webhook.Install(ctx, c, e); err != nil {
		t.Fatal(err)
	}
	mgr := NewManager(t, env)
	if err := pod.Setup(mgr, ControllerUsername, identity); err != nil {
		t.Fatal(err)
	}
	Start(t, mgr)
	return e
}
