package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/testenv"
)

// TestNetworkPolicyFeedback: podsg-controller, as Setup wires it on a real apiserver with
// podsg's CRDs, records Warning events on a NetworkPolicy that selects no pod and on one whose
// named port no selected pod declares, and on a Calico policy the agent refuses, naming the
// field; a pod that comes to be selected ends the first finding, and no event repeats.
func TestNetworkPolicyFeedback(t *testing.T) {
	w := start(t, 9)
	ns := controllertest.Namespace(t, w.c, "feedback")
	http := intstr.FromString("http")
	dead := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}}}
	named := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &http}}}}}}
	calico := &calicov3.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "get-only"},
		Spec: calicov3.NetworkPolicySpec{PolicySpec: calicov3.PolicySpec{Selector: "app == 'web'",
			Ingress: []calicov3.Rule{{Action: calicov3.Allow, HTTP: &calicov3.HTTPMatch{Methods: []string{"GET"}}}}}}}
	web := controllertest.Pod(ns, "web", "default")
	web.Labels = map[string]string{"app": "web"}
	web.Spec.NodeName = "nowhere"
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}
	if err := w.c.Create(t.Context(), sa); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	controllertest.Create(t, w.c, dead, named, calico, web)

	for _, want := range []struct{ kind, name, reason string }{
		{"NetworkPolicy", "api", "SelectsNoPods"}, {"NetworkPolicy", "web", "PortNotExposed"}, {"NetworkPolicy", "get-only", "NotEnforced"},
	} {
		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			n, err := events(ctx, w.c, ns, want.kind, want.name, want.reason)
			if err == nil && n == 0 {
				err = fmt.Errorf("no %s event on %s %s/%s yet", want.reason, want.kind, ns, want.name)
			}
			return err
		})
	}

	api := controllertest.Pod(ns, "api", "default")
	api.Labels = map[string]string{"app": "api"}
	api.Spec.NodeName = "nowhere"
	controllertest.Create(t, w.c, api)
	// The checks that follow the new pod (2 s after it) must not report anything again.
	testenv.Consistently(t, 5*time.Second, func(ctx context.Context) error {
		for _, name := range []string{"api", "web", "get-only"} {
			var list eventsv1.EventList
			if err := w.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return err
			}
			for _, e := range list.Items {
				if e.Regarding.Name == name && e.Series != nil {
					return fmt.Errorf("event %s on %s repeated: %+v", e.Reason, name, e.Series)
				}
			}
		}
		return nil
	})
	if n, err := events(t.Context(), w.c, ns, "NetworkPolicy", "api", "SelectsNoPods"); err != nil || n != 1 {
		t.Fatalf("SelectsNoPods events on api: %d (%v), want 1", n, err)
	}
}

// events counts the events with reason about the object of that kind.
func events(ctx context.Context, c client.Client, ns, kind, name, reason string) (int, error) {
	var list eventsv1.EventList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == name && e.Reason == reason && e.Type == corev1.EventTypeWarning {
			n++
		}
	}
	return n, nil
}
