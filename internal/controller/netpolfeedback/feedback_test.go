package netpolfeedback

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/testenv"
)

// recorder keeps every event as "Type Reason kind/namespace/name: note".
type recorder struct{ events []string }

func (r *recorder) Eventf(regarding, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	o := regarding.(client.Object)
	r.events = append(r.events, fmt.Sprintf("%s %s %T %s/%s: %s", eventtype, reason, o, o.GetNamespace(), o.GetName(), fmt.Sprintf(note, args...)))
}

// take returns the events recorded since the last take.
func (r *recorder) take() []string {
	out := r.events
	r.events = nil
	return out
}

func webPolicy(ports ...string) *networkingv1.NetworkPolicy {
	p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "uid-web"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}}
	var rule networkingv1.NetworkPolicyIngressRule
	for _, name := range ports {
		port := intstr.FromString(name)
		rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{Port: &port})
	}
	p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{rule}
	return p
}

func webPod(phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"}},
		Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: phase}}
}

// TestReportOncePerFinding: each finding is one Warning event on its policy, not one per
// check; again when its message changes, when it comes back after going away, or after
// Repeat; and a finished pod selects nothing.
func TestReportOncePerFinding(t *testing.T) {
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(webPolicy("http")).Build()
	rec := &recorder{}
	clk := clocktesting.NewFakePassiveClock(time.Now())
	r := New(kube, rec, Served{Calico: true}, Options{Repeat: time.Hour, Clock: clk})
	report := func() []string {
		t.Helper()
		if err := r.Report(t.Context()); err != nil {
			t.Fatal(err)
		}
		return rec.take()
	}
	expect := func(step string, got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: events %q, want %d like %q", step, got, len(want), want)
		}
		for i := range want {
			if !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s: event %d\n got %s\nwant %s…", step, i, got[i], want[i])
			}
		}
	}
	noPods := "Warning SelectsNoPods *v1.NetworkPolicy shop/web: spec.podSelector (app=web) selects no running pod in namespace shop"
	expect("no pod", report(), noPods)
	expect("checked again", report())
	clk.SetTime(clk.Now().Add(59 * time.Minute))
	expect("before Repeat", report())
	clk.SetTime(clk.Now().Add(time.Minute))
	expect("after Repeat", report(), noPods)

	done := webPod(corev1.PodSucceeded)
	if err := kube.Create(t.Context(), done); err != nil {
		t.Fatal(err)
	}
	expect("a finished pod", report())
	if err := kube.Delete(t.Context(), done); err != nil {
		t.Fatal(err)
	}
	if err := kube.Create(t.Context(), webPod(corev1.PodRunning)); err != nil {
		t.Fatal(err)
	}
	expect("a running pod exposing http", report())

	p := &networkingv1.NetworkPolicy{}
	if err := kube.Get(t.Context(), client.ObjectKey{Namespace: "shop", Name: "web"}, p); err != nil {
		t.Fatal(err)
	}
	p.Spec = webPolicy("http", "https", "grpc").Spec
	if err := kube.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	expect("two dead named ports", report(),
		`Warning PortNotExposed *v1.NetworkPolicy shop/web: spec.ingress[0].ports[1]: no pod the policy selects has a TCP container port named "https"`,
		`Warning PortNotExposed *v1.NetworkPolicy shop/web: spec.ingress[0].ports[2]: no pod the policy selects has a TCP container port named "grpc"`)
	expect("unchanged", report())
	p.Spec = webPolicy("http", "grpc").Spec
	if err := kube.Update(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	expect("a message changed", report(),
		`Warning PortNotExposed *v1.NetworkPolicy shop/web: spec.ingress[0].ports[1]: no pod the policy selects has a TCP container port named "grpc"`)

	if err := kube.Delete(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web-1"}}); err != nil {
		t.Fatal(err)
	}
	expect("the pod gone", report(), noPods)
}

// TestReportRefusedCalicoPolicy: a Calico policy using a field podsg does not cover gets a
// Warning event naming the field, on the policy itself.
func TestReportRefusedCalicoPolicy(t *testing.T) {
	order := 10.0
	gnp := &calicov3.GlobalNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "untracked", UID: "uid-gnp"},
		Spec: calicov3.GlobalNetworkPolicySpec{PolicySpec: calicov3.PolicySpec{Selector: "all()", Order: &order}, DoNotTrack: true}}
	np := &calicov3.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "get-only", UID: "uid-np"},
		Spec: calicov3.NetworkPolicySpec{PolicySpec: calicov3.PolicySpec{Selector: "app == 'web'",
			Ingress: []calicov3.Rule{{Action: calicov3.Allow, HTTP: &calicov3.HTTPMatch{Methods: []string{"GET"}}}}}}}
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(gnp, np, webPod(corev1.PodRunning)).Build()
	rec := &recorder{}
	if err := New(kube, rec, Served{Calico: true}, Options{}).Report(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Warning NotEnforced *calicov3.GlobalNetworkPolicy /untracked: podsg-agent does not enforce this policy at all (the other policies still apply): spec.doNotTrack applies to host endpoints, which podsg does not police",
		"Warning NotEnforced *calicov3.NetworkPolicy shop/get-only: podsg-agent does not enforce this policy at all (the other policies still apply): spec.ingress[0].http: HTTP matches need Calico's application layer",
	}
	if len(rec.events) != len(want) {
		t.Fatalf("events %q, want %q", rec.events, want)
	}
	for i := range want {
		if !strings.HasPrefix(rec.events[i], want[i]) {
			t.Errorf("event %d\n got %s\nwant %s…", i, rec.events[i], want[i])
		}
	}
}

// TestNotServed: without the Calico and ClusterNetworkPolicy APIs, the reporter reads neither
// (a list of an API not served would fail every check).
func TestNotServed(t *testing.T) {
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(webPolicy("http"), webPod(corev1.PodRunning)).
		WithInterceptorFuncs(interceptListOnlyCore()).Build()
	rec := &recorder{}
	if err := New(kube, rec, Served{}, Options{}).Report(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 0 {
		t.Fatalf("events %q, want none", rec.events)
	}
}

// interceptListOnlyCore answers lists of the optional policy APIs as an API server that does
// not serve them does.
func interceptListOnlyCore() interceptor.Funcs {
	return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		switch list.(type) {
		case *cnpv1.ClusterNetworkPolicyList, *calicov3.GlobalNetworkPolicyList, *calicov3.NetworkPolicyList:
			return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "not.served"}}
		}
		return c.List(ctx, list, opts...)
	}}
}
