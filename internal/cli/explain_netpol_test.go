package cli

import (
	"context"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/reach"
)

// TestSelectingPolicies: `podsg explain pod` lists the policies of every layer that select
// the pod, in the order they apply (Admin tier, Calico's default tier with the
// NetworkPolicies, Baseline tier), each with netpol.Check's findings on it, and the refused
// policies that may concern the pod.
func TestSelectingPolicies(t *testing.T) {
	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "web",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.5"}}
	hostNet := web.DeepCopy()
	hostNet.Name, hostNet.Spec.HostNetwork = "agent", true
	finished := web.DeepCopy()
	finished.Name, finished.Status.Phase = "job", corev1.PodSucceeded
	namespaces := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"kubernetes.io/metadata.name": "shop"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
	}
	np := func(ns, name string, ports ...string) *networkingv1.NetworkPolicy {
		p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}}
		if len(ports) > 0 {
			var rule networkingv1.NetworkPolicyIngressRule
			for _, name := range ports {
				port := intstr.FromString(name)
				rule.Ports = append(rule.Ports, networkingv1.NetworkPolicyPort{Port: &port})
			}
			p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{rule}
		}
		return p
	}
	cnp := func(name string, tier cnpv1.Tier, egress bool) *cnpv1.ClusterNetworkPolicy {
		p := &cnpv1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: cnpv1.ClusterNetworkPolicySpec{Tier: tier, Priority: 10,
				Subject: cnpv1.ClusterNetworkPolicySubject{Namespaces: &metav1.LabelSelector{}}}}
		peer := cnpv1.ClusterNetworkPolicyEgressPeer{Namespaces: &metav1.LabelSelector{}}
		if egress {
			p.Spec.Egress = []cnpv1.ClusterNetworkPolicyEgressRule{{Action: cnpv1.ClusterNetworkPolicyRuleActionAccept, To: []cnpv1.ClusterNetworkPolicyEgressPeer{peer}}}
		} else {
			p.Spec.Ingress = []cnpv1.ClusterNetworkPolicyIngressRule{{Action: cnpv1.ClusterNetworkPolicyRuleActionDeny,
				From: []cnpv1.ClusterNetworkPolicyIngressPeer{{Namespaces: &metav1.LabelSelector{}}}}}
		}
		return p
	}
	order := 100.0 // before the NetworkPolicies' 1000 (a policy without order comes last)
	gnp := &calicov3.GlobalNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default-deny"},
		Spec: calicov3.GlobalNetworkPolicySpec{PolicySpec: calicov3.PolicySpec{Selector: "all()", Order: &order,
			Types: []calicov3.PolicyType{calicov3.PolicyTypeIngress, calicov3.PolicyTypeEgress}}}}
	refused := func(ns, name string) *calicov3.NetworkPolicy {
		return &calicov3.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: calicov3.NetworkPolicySpec{PolicySpec: calicov3.PolicySpec{Selector: "app == 'web'",
				Ingress: []calicov3.Rule{{Action: calicov3.Allow, HTTP: &calicov3.HTTPMatch{Methods: []string{"GET"}}}}}}}
	}
	untracked := gnp.DeepCopy()
	untracked.Name, untracked.Spec.DoNotTrack = "untracked", true

	tests := map[string]struct {
		objects   []client.Object
		pod       string
		notServed bool
		want      []string
	}{
		"no policy": {objects: []client.Object{web}, pod: "web",
			want: []string{"  none: every connection to and from it is allowed by network policy"}},
		"a policy of another pod": {objects: []client.Object{web, hostNet, np("other", "web")}, pod: "web",
			want: []string{"  none: every connection to and from it is allowed by network policy"}},
		"host network": {objects: []client.Object{hostNet, np("shop", "web")}, pod: "agent",
			want: []string{"  none: a host-network pod is not selected by network policies"}},
		"finished": {objects: []client.Object{finished, np("shop", "web")}, pod: "job",
			want: []string{"  none: the pod has finished, and no policy applies to it any more"}},
		"every layer, in order": {objects: []client.Object{web, cnp("zz-baseline", cnpv1.BaselineTier, false), np("shop", "web", "http"),
			cnp("admin", cnpv1.AdminTier, true), gnp}, pod: "web",
			want: []string{
				"  ClusterNetworkPolicy Admin tier: admin (egress)",
				"  Calico default tier: GlobalNetworkPolicy default-deny (ingress, egress)",
				"  Calico default tier: NetworkPolicy shop/web (ingress)",
				"  ClusterNetworkPolicy Baseline tier: zz-baseline (ingress)"}},
		"a finding on a selecting policy, from netpol.Check": {objects: []client.Object{web, np("shop", "web", "http", "grpc"), np("shop", "api")}, pod: "web",
			want: []string{
				"  Calico default tier: NetworkPolicy shop/api (ingress)",
				"  Calico default tier: NetworkPolicy shop/web (ingress)",
				`    PortNotExposed: spec.ingress[0].ports[1]: no pod the policy selects has a TCP container port named "grpc", so this port allows nothing`}},
		"refused policies of the cluster and the pod's namespace, not another's": {
			objects: []client.Object{web, gnp, untracked, refused("shop", "get-only"), refused("other", "get-only")}, pod: "web",
			want: []string{
				"  Calico default tier: GlobalNetworkPolicy default-deny (ingress, egress)",
				"Network policies podsg-agent does not enforce, which may concern the pod (not listed above):",
				"  GlobalNetworkPolicy untracked: podsg-agent does not enforce this policy at all (the other policies still apply): spec.doNotTrack applies to host endpoints, which podsg does not police",
				"  NetworkPolicy.projectcalico.org shop/get-only: podsg-agent does not enforce this policy at all (the other policies still apply): spec.ingress[0].http: HTTP matches need Calico's application layer (Istio); podsg does not enforce them"}},
		"optional APIs not served": {objects: []client.Object{web, np("shop", "web")}, pod: "web", notServed: true,
			want: []string{
				"  Calico default tier: NetworkPolicy shop/web (ingress)",
				"  (the cluster does not serve ClusterNetworkPolicy (policy.networking.k8s.io), GlobalNetworkPolicy (projectcalico.org), NetworkPolicy (projectcalico.org))"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := fake.NewClientBuilder().WithScheme(policyScheme()).WithObjects(append(slices.Clone(namespaces), tc.objects...)...)
			if tc.notServed {
				b = b.WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, l client.ObjectList, opts ...client.ListOption) error {
					switch l.(type) {
					case *cnpv1.ClusterNetworkPolicyList, *calicov3.GlobalNetworkPolicyList, *calicov3.NetworkPolicyList:
						return &meta.NoKindMatchError{GroupKind: schema.GroupKind{Group: "not.served"}}
					}
					return c.List(ctx, l, opts...)
				}})
			}
			ps, err := reach.LoadPolicies(t.Context(), b.Build())
			if err != nil {
				t.Fatal(err)
			}
			got := selectingPolicies(ps, types.NamespacedName{Namespace: "shop", Name: tc.pod})
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
