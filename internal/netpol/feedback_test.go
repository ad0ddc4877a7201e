package netpol_test

import (
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// TestCheckFindings: what podsg-controller tells users about a policy. A finding is only
// what really makes a policy do less than written: selecting no pod, a named port no pod it
// can mean declares (numeric ports are never findings: a process may listen on any port), a
// policy the agent refuses (naming the field).
func TestCheckFindings(t *testing.T) {
	pods := []*netpol.Pod{db, frontend, client, other, dnsPod, mySAPod, plainPod, hostPod}
	seed, err := os.ReadFile("testdata/seed-003-calico.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seedGNPs, seedCNPs := calicoPolicies(t, string(seed))
	namedCNP := func(name string) cnpv1.ClusterNetworkPolicyProtocol {
		return cnpv1.ClusterNetworkPolicyProtocol{DestinationNamedPort: name}
	}
	tests := map[string]struct {
		ps netpol.PolicySet
		// want are "Reason Namespace/Name: message fragment" lines, in Check's order.
		want []string
	}{
		"ingress on a named port the selected pod declares": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "redis", sel("role", "db"), ingress(nil, namedPort(corev1.ProtocolTCP, "redis")))}}},
		"a numeric port no pod declares is fine": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "odd", sel("role", "db"), ingress(nil, port(corev1.ProtocolTCP, 9999)))}}},
		"selects no pod": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "typo", sel("role", "dbb"))}},
			want: []string{"SelectsNoPods default/typo: spec.podSelector (role=dbb) selects no running pod in namespace default"}},
		"the selecting labels exist only in another namespace": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("myproject", "db", sel("role", "db"))}},
			want: []string{"SelectsNoPods myproject/db: spec.podSelector (role=db) selects no running pod in namespace myproject"}},
		"a host-network pod is never selected": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("kube-system", "hostnet", sel("role", "db"))}},
			want: []string{"SelectsNoPods kube-system/hostnet:"}},
		"ingress on a named port no selected pod declares": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "web", sel("role", "db"), ingress(nil, port(corev1.ProtocolTCP, 80), namedPort(corev1.ProtocolTCP, "http")))}},
			want: []string{`PortNotExposed default/web: spec.ingress[0].ports[1]: no pod the policy selects has a TCP container port named "http"`}},
		"the name exists with another protocol": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "metrics", sel("role", "db"), ingress(nil, namedPort(corev1.ProtocolTCP, "metrics")))}},
			want: []string{`PortNotExposed default/metrics: spec.ingress[0].ports[0]: no pod the policy selects has a TCP container port named "metrics"`}},
		"egress to a named port of the peer pods": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "to-db", sel("role", "frontend"), egress(peers(podPeer(sel("role", "db"))), namedPort(corev1.ProtocolTCP, "redis")))}}},
		"egress to a named port only other pods declare": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "to-client", sel("role", "frontend"), egress(peers(podPeer(sel("role", "client"))), namedPort(corev1.ProtocolTCP, "redis")))}},
			want: []string{`PortNotExposed default/to-client: spec.egress[0].ports[0]: no pod this rule's peers cover`}},
		"egress through an ipBlock may reach any pod's named port": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "to-net", sel("role", "frontend"), egress(peers(blockPeer("10.0.0.0/8")), namedPort(corev1.ProtocolTCP, "redis")))}}},
		"refused: endPort with a named port": {ps: netpol.PolicySet{NetworkPolicies: []networkingv1.NetworkPolicy{
			np("default", "bad", sel("role", "db"), ingress(nil, func() networkingv1.NetworkPolicyPort {
				p, end := namedPort(corev1.ProtocolTCP, "redis"), int32(7000)
				p.EndPort = &end
				return p
			}()))}},
			want: []string{"NotEnforced default/bad: podsg-agent does not enforce this policy at all (the other policies still apply): spec.ingress[0].ports[0]: endPort 7000 needs a numeric port"}},
		"cluster policy whose subject matches nothing": {ps: netpol.PolicySet{ClusterPolicies: []cnpv1.ClusterNetworkPolicy{
			cnp("nobody", admin, 10, subjectNS(sel("team", "ghost")), cIngress("r", deny, fromNS(all), cTCP(80)))}},
			want: []string{"SelectsNoPods /nobody: spec.subject selects no running pod"}},
		"cluster policy with named ports": {ps: netpol.PolicySet{ClusterPolicies: []cnpv1.ClusterNetworkPolicy{
			cnp("named", base, 10, subjectPods(all, sel("role", "db")),
				cIngress("in", accept, fromNS(all), namedCNP("redis"), namedCNP("metrics"), namedCNP("grpc")),
				cEgress("out", accept, []cnpv1.ClusterNetworkPolicyEgressPeer{{Namespaces: sel("kubernetes.io/metadata.name", "kube-system")}}, namedCNP("dns"), namedCNP("http")))}},
			want: []string{
				`PortNotExposed /named: spec.egress[0].protocols[1]: no pod this rule's peers cover has a container port named "http"`,
				`PortNotExposed /named: spec.ingress[0].protocols[2]: no pod the policy selects has a container port named "grpc"`}},
		"the seed's Calico policies": {ps: netpol.PolicySet{GlobalNetworkPolicies: seedGNPs, CalicoNetworkPolicies: seedCNPs}},
		"Calico policy with a field podsg does not cover": {ps: netpol.PolicySet{CalicoNetworkPolicies: calicoNPsOf(t, `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: http-only, namespace: default}
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    http: {methods: [GET]}`)},
			want: []string{"NotEnforced default/http-only: podsg-agent does not enforce this policy at all (the other policies still apply): spec.ingress[0].http: HTTP matches need Calico's application layer"}},
		"Calico policy selecting nothing, and named ports": {ps: netpol.PolicySet{CalicoNetworkPolicies: calicoNPsOf(t, `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: nothing, namespace: default}
spec:
  selector: app == 'nope'
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web, namespace: default}
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    destination: {ports: [http, https]}
  egress:
  - action: Allow
    protocol: UDP
    destination: {namespaceSelector: name == 'kube-system', ports: [dns, dns-tcp]}`)},
			want: []string{
				`SelectsNoPods default/nothing: spec.selector "app == 'nope'" selects no running pod in namespace default`,
				`PortNotExposed default/web: spec.egress[0].destination.ports[1]: no pod the destination can be has a UDP container port named "dns-tcp"`,
				`PortNotExposed default/web: spec.ingress[0].destination.ports[1]: no pod the destination can be has a TCP container port named "https"`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := netpol.Check(tc.ps, pods)
			if len(got) != len(tc.want) {
				t.Fatalf("findings %+v, want %d: %q", got, len(tc.want), tc.want)
			}
			for i, f := range got {
				line := f.Reason + " " + f.Namespace + "/" + f.Name + ": " + f.Message
				if !strings.HasPrefix(line, tc.want[i]) {
					t.Errorf("finding %d\n got %s\nwant %s…", i, line, tc.want[i])
				}
			}
		})
	}
}

func calicoNPsOf(t *testing.T, manifests string) []calicov3.NetworkPolicy {
	t.Helper()
	_, nps := calicoPolicies(t, manifests)
	return nps
}
