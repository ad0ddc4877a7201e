package reach_test

import (
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/reach"
	"github.com/podsg/podsg/internal/testenv"
)

const seedCalico = "../netpol/testdata/seed-003-calico.yaml"

func policyScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(cnpv1.Install(s))
	utilruntime.Must(calicov3.AddToScheme(s))
	return s
}

// seedObjects are the seed's Calico policies, decoded as kubectl would send them.
func seedObjects(t *testing.T) []client.Object {
	t.Helper()
	data, err := os.ReadFile(seedCalico)
	if err != nil {
		t.Fatal(err)
	}
	var out []client.Object
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var kind struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
			t.Fatal(err)
		}
		var o client.Object = &calicov3.NetworkPolicy{}
		if kind.Kind == "GlobalNetworkPolicy" {
			o = &calicov3.GlobalNetworkPolicy{}
		}
		if err := yaml.UnmarshalStrict([]byte(doc), o); err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// seedCluster is the seed's cluster: kube-system labelled name=kube-system with CoreDNS, and
// in default a pod running as my-sa (labelled name=my-sa) and a web pod; one node.
func seedCluster() []client.Object {
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	pod := func(ns, name, sa, ip string, labels map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.PodSpec{NodeName: "node-1", ServiceAccountName: sa,
				Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10", Ports: ports}}},
			Status: corev1.PodStatus{PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}}
	}
	return []client.Object{
		ns("default", nil), ns("kube-system", map[string]string{"name": "kube-system"}),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "my-sa", Labels: map[string]string{"name": "my-sa"}}},
		pod("default", "app", "my-sa", "10.2.1.10", map[string]string{"app": "demo"}),
		pod("default", "web", "", "10.2.1.11", map[string]string{"app": "web"}, corev1.ContainerPort{Name: "http", ContainerPort: 8080}),
		pod("kube-system", "coredns", "", "10.2.0.10", map[string]string{"k8s-app": "kube-dns"}),
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.0.1"}}}},
	}
}

func ep(spec string) reach.Endpoint {
	ip, err := netip.ParseAddr(spec)
	if err != nil {
		ip = map[string]netip.Addr{"pod/default/app": netip.MustParseAddr("10.2.1.10"), "pod/default/web": netip.MustParseAddr("10.2.1.11"),
			"pod/kube-system/coredns": netip.MustParseAddr("10.2.0.10")}[spec]
	}
	return reach.Endpoint{Spec: spec, IP: ip}
}

// TestPolicyVerdicts judges flows over the seed's cluster with the seed's Calico policies, a
// Kubernetes NetworkPolicy and a ClusterNetworkPolicy, as `podsg reach` does: each direction's
// deciding layer and policy.
func TestPolicyVerdicts(t *testing.T) {
	objs := append(seedCluster(), seedObjects(t)...)
	objs = append(objs,
		// A Kubernetes NetworkPolicy letting web reach CoreDNS over TCP: order 1000, after the
		// seed's policies (no order: last), so it decides before their end-of-tier drop.
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-dns-tcp"},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}}}}}},
		&cnpv1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-ssh"},
			Spec: cnpv1.ClusterNetworkPolicySpec{Tier: cnpv1.AdminTier, Priority: 1,
				Subject: cnpv1.ClusterNetworkPolicySubject{Namespaces: &metav1.LabelSelector{}},
				Ingress: []cnpv1.ClusterNetworkPolicyIngressRule{{Name: "ssh", Action: cnpv1.ClusterNetworkPolicyRuleActionDeny,
					From:      []cnpv1.ClusterNetworkPolicyIngressPeer{{Namespaces: &metav1.LabelSelector{}}},
					Protocols: []cnpv1.ClusterNetworkPolicyProtocol{{TCP: &cnpv1.ClusterNetworkPolicyProtocolTCP{DestinationPort: &cnpv1.Port{Number: 22}}}}}}}},
	)
	c := fake.NewClientBuilder().WithScheme(policyScheme()).WithObjects(objs...).Build()
	ps, err := reach.LoadPolicies(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.NotServed) != 0 || len(ps.Pods) != 3 || len(ps.Nodes) != 1 {
		t.Fatalf("loaded %d pods, %d nodes, not served %v", len(ps.Pods), len(ps.Nodes), ps.NotServed)
	}
	tcp := func(p int) reach.Flow { return reach.Flow{Protocol: "tcp", Port: p} }
	tests := map[string]struct {
		src, dst        string
		flow            reach.Flow
		egress, ingress string // "allowed" (no layer decided), else the deciding step
	}{
		"my-sa to web: egress dropped at the end of the tier, ingress allowed by netpol-sa-demo": {
			src: "pod/default/app", dst: "pod/default/web", flow: tcp(8080),
			egress:  "Calico default tier: Deny by GlobalNetworkPolicy allow-dns-egress,GlobalNetworkPolicy default-deny (end of tier)",
			ingress: "Calico default tier: Accept by NetworkPolicy.projectcalico.org default/netpol-sa-demo spec.ingress[0]"},
		"an address is judged as the pod holding it": {
			src: "10.2.1.10", dst: "10.2.1.11", flow: tcp(8080),
			egress:  "Calico default tier: Deny by GlobalNetworkPolicy allow-dns-egress,GlobalNetworkPolicy default-deny (end of tier)",
			ingress: "Calico default tier: Accept by NetworkPolicy.projectcalico.org default/netpol-sa-demo spec.ingress[0]"},
		"dns: allowed out, CoreDNS's ingress dropped by default-deny": {
			src: "pod/default/app", dst: "pod/kube-system/coredns", flow: reach.Flow{Protocol: "udp", Port: 53},
			egress:  "Calico default tier: Accept by GlobalNetworkPolicy allow-dns-egress spec.egress[0]",
			ingress: "Calico default tier: Deny by GlobalNetworkPolicy default-deny (end of tier)"},
		"the NetworkPolicy at order 1000 allows web's egress": {
			src: "pod/default/web", dst: "pod/kube-system/coredns", flow: tcp(53),
			egress:  "Calico default tier: Accept by NetworkPolicy default/web-dns-tcp spec.egress[0]",
			ingress: "Calico default tier: Deny by GlobalNetworkPolicy default-deny (end of tier)"},
		"the Admin tier decides first": {
			src: "pod/default/app", dst: "pod/default/web", flow: tcp(22),
			egress:  "Calico default tier: Deny by GlobalNetworkPolicy allow-dns-egress,GlobalNetworkPolicy default-deny (end of tier)",
			ingress: "ClusterNetworkPolicy Admin tier: Deny by no-ssh ssh"},
		"an outside address: only the pod's side is policed": {
			src: "8.8.8.8", dst: "pod/default/web", flow: tcp(8080), egress: "not enforced",
			ingress: "Calico default tier: Deny by GlobalNetworkPolicy default-deny,NetworkPolicy.projectcalico.org default/netpol-sa-demo (end of tier)"},
		"the node is no exception to Calico's policies": {
			src: "192.168.0.1", dst: "pod/default/web", flow: tcp(8080), egress: "not enforced",
			ingress: "Calico default tier: Deny by GlobalNetworkPolicy default-deny,NetworkPolicy.projectcalico.org default/netpol-sa-demo (end of tier)"},
	}
	describe := func(j netpol.Judgement) string {
		if !j.Enforced {
			return "not enforced"
		}
		d, ok := j.Decider()
		if !ok {
			return "allowed"
		}
		return strings.TrimSuffix(d.String(), " ("+d.Why+")")
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := ps.Judge(ep(tc.src), ep(tc.dst), tc.flow)
			if got := describe(r.Egress); got != tc.egress {
				t.Errorf("egress: %q, want %q", got, tc.egress)
			}
			if got := describe(r.Ingress); got != tc.ingress {
				t.Errorf("ingress: %q, want %q", got, tc.ingress)
			}
		})
	}

	var web *netpol.Pod
	for _, p := range ps.Pods {
		if p.Name == "web" {
			web = p
		}
	}
	var got []string
	for _, s := range ps.Selecting(web) {
		got = append(got, s.Layer+": "+s.Policy)
	}
	want := []string{"ClusterNetworkPolicy Admin tier: no-ssh", "Calico default tier: NetworkPolicy default/web-dns-tcp",
		"Calico default tier: GlobalNetworkPolicy allow-dns-egress", "Calico default tier: GlobalNetworkPolicy default-deny",
		"Calico default tier: NetworkPolicy.projectcalico.org default/netpol-sa-demo"}
	if !slices.Equal(got, want) {
		t.Errorf("policies selecting web: %q, want %q", got, want)
	}
}

// TestLoadPoliciesFromAPIServer loads the policy state from a real apiserver: the seed's
// Calico manifests applied with kubectl, pods with addresses and a ServiceAccount's labels;
// every policy API is served (podsg installs the ClusterNetworkPolicy CRD with its own).
func TestLoadPoliciesFromAPIServer(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()
	c, err := client.New(env.Config, client.Options{Scheme: policyScheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range seedCluster() {
		if _, ok := o.(*corev1.Namespace); ok {
			continue // the apiserver's own; kube-system is labelled below, as the guide says
		}
		status := o.DeepCopyObject().(client.Object)
		if err := c.Create(ctx, o); err != nil {
			t.Fatalf("creating %s: %v", o.GetName(), err)
		}
		if p, ok := status.(*corev1.Pod); ok {
			p.ResourceVersion = o.GetResourceVersion()
			if err := c.Status().Update(ctx, p); err != nil {
				t.Fatalf("setting %s's address: %v", p.Name, err)
			}
		}
	}
	if _, err := env.Kubectl(ctx, "", "label", "namespace", "kube-system", "name=kube-system"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Kubectl(ctx, "", "apply", "-f", seedCalico); err != nil {
		t.Fatal(err)
	}
	ps, err := reach.LoadPolicies(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.NotServed) != 0 {
		t.Errorf("not served: %v", ps.NotServed)
	}
	r := ps.Judge(ep("pod/default/app"), ep("pod/default/web"), reach.Flow{Protocol: "tcp", Port: 8080})
	if d, _ := r.Ingress.Decider(); !r.Ingress.Allowed || d.Policy != "NetworkPolicy.projectcalico.org default/netpol-sa-demo" {
		t.Errorf("ingress from my-sa's pod: %v", r.Ingress.Steps)
	}
	// allow-dns-egress finds kube-system by the label the guide asks for.
	if r := ps.Judge(ep("pod/default/app"), ep("pod/kube-system/coredns"), reach.Flow{Protocol: "udp", Port: 53}); !r.Egress.Allowed {
		t.Errorf("egress to CoreDNS: %v", r.Egress.Steps)
	}
	if r := ps.Judge(ep("pod/default/web"), ep("pod/default/app"), reach.Flow{Protocol: "tcp", Port: 8080}); r.Ingress.Allowed {
		t.Errorf("ingress from a pod of another service account: %v", r.Ingress.Steps)
	}
}
