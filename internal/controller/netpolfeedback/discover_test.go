package netpolfeedback_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/netpolfeedback"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/testenv"
)

// The optional policy APIs' CRDs, as podsg ships them.
var optionalCRDs = []string{"clusternetworkpolicies.policy.networking.k8s.io",
	"globalnetworkpolicies.projectcalico.org", "networkpolicies.projectcalico.org"}

// TestAPIsInstalledLater: on a real API server that serves neither ClusterNetworkPolicy nor
// Calico's policies when the reporter starts, installing their CRDs afterwards is enough: the
// reporter finds them, watches them, and records its findings on their policies, without a
// restart.
func TestAPIsInstalledLater(t *testing.T) {
	env := testenv.Start(t, testenv.Options{OmitCRDs: optionalCRDs})
	mgr := controllertest.NewManager(t, env)
	served, err := netpolfeedback.ServedBy(mgr.GetRESTMapper())
	if err != nil {
		t.Fatal(err)
	}
	if served != (netpolfeedback.Served{}) {
		t.Fatalf("served %+v before the CRDs are installed", served)
	}
	r := netpolfeedback.New(mgr.GetClient(), mgr.GetEventRecorder(v1beta1.ReportingController), served,
		netpolfeedback.Options{Discover: 200 * time.Millisecond, Debounce: 100 * time.Millisecond})
	if err := r.Register(mgr, controller.Options{}); err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, mgr)

	env.InstallCRDs(t, optionalCRDs...)
	ns := controllertest.Namespace(t, env.Client, "later")
	cnp := &cnpv1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "ghosts"},
		Spec: cnpv1.ClusterNetworkPolicySpec{Tier: cnpv1.AdminTier, Priority: 10,
			Subject: cnpv1.ClusterNetworkPolicySubject{Namespaces: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "ghost"}}},
			Ingress: []cnpv1.ClusterNetworkPolicyIngressRule{{Action: cnpv1.ClusterNetworkPolicyRuleActionDeny,
				From: []cnpv1.ClusterNetworkPolicyIngressPeer{{Namespaces: &metav1.LabelSelector{}}}}}}}
	calico := &calicov3.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "get-only"},
		Spec: calicov3.NetworkPolicySpec{PolicySpec: calicov3.PolicySpec{Selector: "app == 'web'",
			Ingress: []calicov3.Rule{{Action: calicov3.Allow, HTTP: &calicov3.HTTPMatch{Methods: []string{"GET"}}}}}}}
	controllertest.Create(t, env.Client, cnp, calico)

	for _, want := range []struct {
		ns, kind, name, reason string
	}{
		{"default", "ClusterNetworkPolicy", "ghosts", "SelectsNoPods"}, // a cluster-scoped object's events go to default
		{ns, "NetworkPolicy", "get-only", "NotEnforced"},
	} {
		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			var list eventsv1.EventList
			if err := env.Client.List(ctx, &list, client.InNamespace(want.ns)); err != nil {
				return err
			}
			for _, e := range list.Items {
				if e.Regarding.Kind == want.kind && e.Regarding.Name == want.name && e.Reason == want.reason && e.Type == corev1.EventTypeWarning {
					return nil
				}
			}
			return fmt.Errorf("no %s event on %s %s yet (%d events in %s)", want.reason, want.kind, want.name, len(list.Items), want.ns)
		})
	}
}
