package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
)

// TestAnnotationDenied: when admission denies the controller's own annotation (here: it was
// told it is another user than its credentials say, as a wrong --controller-username does),
// the pod gets a Warning event naming who was denied and what to check, and the controller
// keeps retrying, so the pod is annotated once the cause is gone.
func TestAnnotationDenied(t *testing.T) {
	const told = "someone-else"
	w := startWith(t, options{branchLimit: 2, noManager: true})
	w.cfg.ControllerUsername = told
	m := w.startManager(t, func(context.CancelFunc) controller.EC2 { return w.api })
	t.Cleanup(func() { m.stop(t) })

	node, _ := w.addNode(t, "ip-10-0-0-60")
	w.waitCapacity(t, node.Name, 2)
	ns := controllertest.Namespace(t, w.c, "denied")
	controllertest.Create(t, w.c, w.policy(ns), controllertest.SeedServiceAccount(ns))
	controllertest.WaitForWebhook(t, w.c, ns)
	controllertest.Create(t, w.c, controllertest.Pod(ns, "backend", "rds-db-access"))

	var note string
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		var err error
		note, err = warning(ctx, w.c, ns, "backend", v1beta1.ReasonAnnotationFailed)
		return err
	})
	for _, want := range []string{
		controllertest.ControllerUsername, // who was denied, as the webhook saw it
		told,                              // who the controller was told it is
		"--controller-username",           // what to check
		"retrying",
	} {
		if !strings.Contains(note, want) {
			t.Errorf("event %q does not say %q", note, want)
		}
	}
	pod := &corev1.Pod{}
	if err := w.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "backend"}, pod); err != nil {
		t.Fatal(err)
	}
	if _, ok := pod.Annotations[v1beta1.AnnotationPodENI]; ok {
		t.Fatalf("the denied annotation was written: %v", pod.Annotations)
	}

	// The denial goes away (here: with the webhook); the retries, not a new event, annotate.
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "validating-webhook-configuration"}}
	if err := w.c.Delete(t.Context(), vwc); err != nil {
		t.Fatal(err)
	}
	w.waitENI(t, ns, "backend")
}

// warning returns the note of a Warning event with reason about an object.
func warning(ctx context.Context, c client.Client, ns, name, reason string) (string, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return "", err
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason && e.Type == corev1.EventTypeWarning {
			return e.Note, nil
		}
	}
	return "", fmt.Errorf("no %s Warning about %s/%s among %d events", reason, ns, name, len(list.Items))
}
