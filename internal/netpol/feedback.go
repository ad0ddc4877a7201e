package netpol

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// The kinds of policy Check reports on, as the finding names them.
const (
	KindNetworkPolicy         = "NetworkPolicy"
	KindClusterNetworkPolicy  = "ClusterNetworkPolicy"
	KindGlobalNetworkPolicy   = "GlobalNetworkPolicy"
	KindCalicoNetworkPolicy   = "NetworkPolicy.projectcalico.org"
	ReasonNotEnforced         = "NotEnforced"
	ReasonSelectsNoPods       = "SelectsNoPods"
	ReasonNamedPortNotExposed = "PortNotExposed"
)

// PolicySet is every policy of the cluster, as the API server holds them.
type PolicySet struct {
	NetworkPolicies       []networkingv1.NetworkPolicy
	ClusterPolicies       []cnpv1.ClusterNetworkPolicy
	GlobalNetworkPolicies []calicov3.GlobalNetworkPolicy
	CalicoNetworkPolicies []calicov3.NetworkPolicy
}

// Finding is something a user should hear about one policy: it is not enforced at all
// (NotEnforced: the message names the field), it applies to no pod (SelectsNoPods), or a rule
// names a port no pod it could mean declares (PortNotExposed: that part of the rule matches
// nothing).
type Finding struct {
	PolicyRef
	Reason, Message string
}

// Check reports, for every policy, what makes it do less than its author likely meant, from
// the policies and the cluster's running pods (give only those, as PodsFromLists does: a
// finished pod is selected by nothing). A policy the agent refuses (PolicySet.Enforced) is reported NotEnforced with the
// same error, and the others still get their own findings.
//
// Only named ports are checked: a numeric port that no pod declares is not an error in
// Kubernetes (containerPort is informational, a process may listen on any port), but a named
// port resolves only through a container port of that name, so a name no pod declares makes
// that part of the rule match nothing. The pods that can resolve it are the destination's:
// for ingress the pods the policy selects, for egress the pods the rule's peers cover (every
// pod, when a peer is an address range).
func Check(ps PolicySet, pods []*Pod) []Finding {
	enforced, refused := ps.Enforced()
	out := make([]Finding, 0, len(refused))
	for _, r := range refused {
		out = append(out, notEnforced(r))
	}
	for i := range enforced.NetworkPolicies {
		out = append(out, checkNP(&enforced.NetworkPolicies[i], pods)...)
	}
	for i := range enforced.ClusterPolicies {
		out = append(out, checkCNP(&enforced.ClusterPolicies[i], pods)...)
	}
	for i := range enforced.GlobalNetworkPolicies {
		g := &enforced.GlobalNetworkPolicies[i]
		out = append(out, checkCalico(KindGlobalNetworkPolicy, "", g.Name, &g.Spec.PolicySpec, g.Spec.NamespaceSelector, pods)...)
	}
	for i := range enforced.CalicoNetworkPolicies {
		c := &enforced.CalicoNetworkPolicies[i]
		out = append(out, checkCalico(KindCalicoNetworkPolicy, c.Namespace, c.Name, &c.Spec.PolicySpec, "", pods)...)
	}
	slices.SortFunc(out, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
	})
	return out
}

// notEnforced is the finding for a policy the agent refuses, with the error naming the field
// (the error's own prefix, which names the policy, is left to the event's object).
func notEnforced(r Refusal) Finding {
	msg := r.Err.Error()
	prefix := r.Kind + " " + r.Name + ": "
	if r.Namespace != "" {
		prefix = r.Kind + " " + r.Namespace + "/" + r.Name + ": "
	}
	return Finding{PolicyRef: r.PolicyRef, Reason: ReasonNotEnforced,
		Message: "podsg-agent does not enforce this policy at all (the other policies still apply): " + strings.TrimPrefix(msg, prefix)}
}

func checkNP(np *networkingv1.NetworkPolicy, pods []*Pod) []Finding {
	f := func(reason, format string, args ...any) Finding {
		return Finding{PolicyRef: PolicyRef{Kind: KindNetworkPolicy, Namespace: np.Namespace, Name: np.Name}, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	p, err := compileNP(np)
	if err != nil { // Enforced accepted it: cannot happen
		return nil
	}
	var selected []*Pod
	for _, pod := range pods {
		if pod.policyPodOrNil() != nil && p.namespace == pod.Namespace && p.pods.Matches(labelsOf(pod)) {
			selected = append(selected, pod)
		}
	}
	if len(selected) == 0 {
		return []Finding{f(ReasonSelectsNoPods, "spec.podSelector (%s) selects no running pod in namespace %s: the policy isolates nothing until one exists",
			selectorString(p.pods), np.Namespace)}
	}
	var out []Finding
	for i, r := range np.Spec.Ingress {
		for j, port := range r.Ports {
			if name, proto, ok := npNamedPort(port); ok && !anyExposes(selected, name, proto) {
				out = append(out, f(ReasonNamedPortNotExposed, "spec.ingress[%d].ports[%d]: no pod the policy selects has a %s container port named %q, so this port allows nothing",
					i, j, proto, name))
			}
		}
	}
	for i, r := range np.Spec.Egress {
		for j, port := range r.Ports {
			name, proto, ok := npNamedPort(port)
			if !ok {
				continue
			}
			if rule := p.rules[Egress][i]; !anyExposes(rule.peerPods(pods), name, proto) {
				out = append(out, f(ReasonNamedPortNotExposed, "spec.egress[%d].ports[%d]: no pod this rule's peers cover has a %s container port named %q, so this port allows nothing",
					i, j, proto, name))
			}
		}
	}
	return out
}

func npNamedPort(p networkingv1.NetworkPolicyPort) (string, corev1.Protocol, bool) {
	if p.Port == nil || p.Port.Type != intstr.String {
		return "", "", false
	}
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	return p.Port.StrVal, proto, true
}

// peerPods are the pods a rule's peers cover: an ipBlock may cover any pod's address, so it
// (and a rule without peers) covers every pod.
func (r npRule) peerPods(pods []*Pod) []*Pod {
	if len(r.peers) == 0 || slices.ContainsFunc(r.peers, func(p npPeer) bool { return p.block != nil }) {
		return pods
	}
	var out []*Pod
	for _, pod := range pods {
		if r.peerMatches(Endpoint{Pod: pod}) {
			out = append(out, pod)
		}
	}
	return out
}

func checkCNP(c *cnpv1.ClusterNetworkPolicy, pods []*Pod) []Finding {
	f := func(reason, format string, args ...any) Finding {
		return Finding{PolicyRef: PolicyRef{Kind: KindClusterNetworkPolicy, Name: c.Name}, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	p, err := compileCNP(c)
	if err != nil { // Enforced accepted it: cannot happen
		return nil
	}
	var selected []*Pod
	for _, pod := range pods {
		if p.subject.matches(pod.policyPodOrNil()) {
			selected = append(selected, pod)
		}
	}
	if len(selected) == 0 {
		return []Finding{f(ReasonSelectsNoPods, "spec.subject selects no running pod: the policy applies to nothing until one exists")}
	}
	return cnpNamedPorts(c, p, selected, pods)
}

// cnpNamedPorts are the findings on the policy's named ports (destinationNamedPort).
func cnpNamedPorts(c *cnpv1.ClusterNetworkPolicy, p cnpPolicy, selected, pods []*Pod) []Finding {
	f := func(format string, args ...any) Finding {
		return Finding{PolicyRef: PolicyRef{Kind: KindClusterNetworkPolicy, Name: c.Name}, Reason: ReasonNamedPortNotExposed, Message: fmt.Sprintf(format, args...)}
	}
	var out []Finding
	for i, r := range c.Spec.Ingress {
		for j, proto := range r.Protocols {
			if name := proto.DestinationNamedPort; name != "" && !anyExposes(selected, name, "") {
				out = append(out, f("spec.ingress[%d].protocols[%d]: no pod the policy selects has a container port named %q, so this match covers nothing",
					i, j, name))
			}
		}
	}
	for i, r := range c.Spec.Egress {
		for j, proto := range r.Protocols {
			if name := proto.DestinationNamedPort; name != "" && !anyExposes(p.rules[Egress][i].peerPods(pods), name, "") {
				out = append(out, f("spec.egress[%d].protocols[%d]: no pod this rule's peers cover has a container port named %q, so this match covers nothing",
					i, j, name))
			}
		}
	}
	return out
}

// peerPods are the pods the rule's peers may cover: networks may cover any pod's address.
func (r cnpRule) peerPods(pods []*Pod) []*Pod {
	if slices.ContainsFunc(r.peers, func(p cnpPeer) bool { return len(p.networks) > 0 }) {
		return pods
	}
	var out []*Pod
	for _, pod := range pods {
		if r.peerMatches(Endpoint{Pod: pod}) {
			out = append(out, pod)
		}
	}
	return out
}

func checkCalico(kind, ns, name string, spec *calicov3.PolicySpec, namespaceSelector string, pods []*Pod) []Finding {
	f := func(reason, format string, args ...any) Finding {
		return Finding{PolicyRef: PolicyRef{Kind: kind, Namespace: ns, Name: name}, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	p, err := compileCalico(spec, ns)
	if err != nil { // Enforced accepted it: cannot happen
		return nil
	}
	// A global policy's namespaceSelector, which compileCalico leaves to its caller (checked
	// by Enforced).
	p.namespaces, _ = optionalSelector(namespaceSelector, "spec.namespaceSelector")
	var selected []*Pod
	for _, pod := range pods {
		if pod.policyPodOrNil() != nil && (p.applies(pod, Ingress) || p.applies(pod, Egress)) {
			selected = append(selected, pod)
		}
	}
	if len(selected) == 0 {
		where := "running pod"
		if ns != "" {
			where = "running pod in namespace " + ns
		}
		return []Finding{f(ReasonSelectsNoPods, "spec.selector %q selects no %s: the policy applies to nothing until one exists", spec.Selector, where)}
	}
	var out []Finding
	for _, d := range []Direction{Ingress, Egress} {
		for i, r := range p.rules[d] {
			for j, port := range r.dst.ports {
				if port.named == "" {
					continue
				}
				candidates := selected
				if d == Egress {
					candidates = r.dst.peerPods(pods)
				}
				if !anyExposes(candidates, port.named, port.proto) {
					out = append(out, f(ReasonNamedPortNotExposed, "spec.%s[%d].destination.ports[%d]: no pod the destination can be has a %s container port named %q, so this port matches nothing",
						d, i, j, port.proto, port.named))
				}
			}
		}
	}
	return out
}

// peerPods are the pods the entity may be: every pod unless it names pods (nets may cover any).
func (en calicoEntity) peerPods(pods []*Pod) []*Pod {
	if !en.pods {
		return pods
	}
	var out []*Pod
	for _, pod := range pods {
		if en.podMatches(pod.policyPodOrNil()) {
			out = append(out, pod)
		}
	}
	return out
}

// anyExposes reports whether one of the pods has a container port of that name and protocol
// ("" any protocol).
func anyExposes(pods []*Pod, name string, proto corev1.Protocol) bool {
	return slices.ContainsFunc(pods, func(p *Pod) bool {
		return p.policyPodOrNil() != nil && len(namedPorts(p, portSpec{named: name, proto: proto})) > 0
	})
}

func labelsOf(p *Pod) labels.Set { return labels.Set(p.Labels) }

// selectorString renders a label selector for a message; the empty one selects every pod.
func selectorString(s labels.Selector) string {
	if s == nil || s.Empty() {
		return "every pod"
	}
	return s.String()
}
