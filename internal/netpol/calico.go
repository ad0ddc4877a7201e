package netpol

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// CalicoTierLayer is the layer of Calico's default tier: Calico's policies and, at order
// 1000 among them, Kubernetes NetworkPolicies (as Calico itself orders them).
const CalicoTierLayer = "Calico default tier"

// KubernetesNetworkPolicyOrder is the order Calico gives a Kubernetes NetworkPolicy in its
// default tier: Calico policies with a lower order apply before it, the others after.
const KubernetesNetworkPolicyOrder = 1000

// Labels Calico adds to what its selectors see: a namespace's and a service account's name,
// and a pod's namespace, orchestrator and service account.
const (
	CalicoNameLabel           = "projectcalico.org/name"
	CalicoNamespaceLabel      = "projectcalico.org/namespace"
	CalicoOrchestratorLabel   = "projectcalico.org/orchestrator"
	CalicoServiceAccountLabel = "projectcalico.org/serviceaccount"
)

// CalicoTier is Calico's default tier: its GlobalNetworkPolicies and NetworkPolicies and the
// Kubernetes NetworkPolicies, in Calico's order (order, lower first, none last; then name).
//
// For one pod and direction, the policies that apply to it are walked in that order; a
// Calico rule that matches Allows, Denies, Passes (to the next layer) or Logs (and the walk
// goes on); a Kubernetes NetworkPolicy's matching rule allows. When policies applied and
// none decided, the tier denies (Calico's end-of-tier drop) — except traffic between a pod
// and its own node when only Kubernetes NetworkPolicies applied, which Kubernetes always
// allows. No policy applying: no decision.
type CalicoTier struct {
	entries []tierEntry
}

// tierEntry is one policy of the tier: Calico's or a Kubernetes NetworkPolicy.
type tierEntry struct {
	order  float64
	name   string
	ref    PolicyRef
	calico *calicoPolicy
	knp    *npPolicy
}

type calicoPolicy struct {
	namespace string // "" for a GlobalNetworkPolicy
	selector  calicoSelector
	// namespaces and serviceAccounts further restrict the subject; nil: no restriction.
	namespaces, serviceAccounts calicoSelector
	types                       map[Direction]bool
	rules                       map[Direction][]calicoRule
}

type calicoRule struct {
	name     string
	action   calicov3.Action
	protocol corev1.Protocol // "" any
	family   int             // 4 or 6; 0 both
	src, dst calicoEntity
}

// calicoEntity is one end of a rule: every criterion given must hold.
type calicoEntity struct {
	nets, notNets []netip.Prefix
	// pods is set when a selector, notSelector, namespaceSelector or serviceAccounts is:
	// the end must then be a pod in scope (and matching selector); with notSelector, it
	// must not be a pod in scope matching notSelector.
	pods        bool
	selector    calicoSelector
	notSelector calicoSelector
	scope       calicoScope
	// ports and notPorts are destination ports (Calico validation: with a protocol).
	ports, notPorts []portSpec
}

// calicoScope is the pods a rule's selectors look at: by namespace and service account.
type calicoScope struct {
	namespace  string         // a namespaced policy's own namespace, when no namespaceSelector
	namespaces calicoSelector // namespaceSelector; nil: namespace (or every one, global)
	saNames    []string
	saSelector calicoSelector
	sa         bool
}

// NewCalicoTier checks and orders Calico's policies with the Kubernetes NetworkPolicies; an
// error names the policy and the field. Fields podsg does not enforce (other tiers, HTTP and
// ICMP matches, service matches, source ports, host-endpoint options, protocols other than
// TCP, UDP, SCTP and ICMP) are refused, so that nothing is enforced more loosely than written.
func NewCalicoTier(gnps []calicov3.GlobalNetworkPolicy, cnps []calicov3.NetworkPolicy, nps []networkingv1.NetworkPolicy) (*CalicoTier, error) {
	t := &CalicoTier{}
	for i := range gnps {
		g := &gnps[i]
		name := "GlobalNetworkPolicy " + g.Name
		for _, f := range []struct {
			field string
			set   bool
		}{{"spec.doNotTrack", g.Spec.DoNotTrack}, {"spec.preDNAT", g.Spec.PreDNAT}, {"spec.applyOnForward", g.Spec.ApplyOnForward}} {
			if f.set {
				return nil, fmt.Errorf("%s: %s applies to host endpoints, which podsg does not police", name, f.field)
			}
		}
		p, err := compileCalico(&g.Spec.PolicySpec, "")
		if err == nil {
			p.namespaces, err = optionalSelector(g.Spec.NamespaceSelector, "spec.namespaceSelector")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.entries = append(t.entries, tierEntry{order: order(g.Spec.Order), name: name,
			ref: PolicyRef{Kind: KindGlobalNetworkPolicy, Name: g.Name}, calico: &p})
	}
	for i := range cnps {
		c := &cnps[i]
		name := fmt.Sprintf("NetworkPolicy.projectcalico.org %s/%s", c.Namespace, c.Name)
		p, err := compileCalico(&c.Spec.PolicySpec, c.Namespace)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.entries = append(t.entries, tierEntry{order: order(c.Spec.Order), name: name,
			ref: PolicyRef{Kind: KindCalicoNetworkPolicy, Namespace: c.Namespace, Name: c.Name}, calico: &p})
	}
	np, err := NewNetworkPolicies(nps)
	if err != nil {
		return nil, err
	}
	for i := range np.policies {
		p := &np.policies[i]
		t.entries = append(t.entries, tierEntry{order: KubernetesNetworkPolicyOrder, name: "NetworkPolicy " + p.name, ref: p.ref(), knp: p})
	}
	slices.SortStableFunc(t.entries, func(a, b tierEntry) int {
		return cmp.Or(cmp.Compare(a.order, b.order), cmp.Compare(a.name, b.name))
	})
	return t, nil
}

// order is a policy's order; none sorts after every number.
func order(o *float64) float64 {
	if o == nil {
		return math.Inf(1)
	}
	return *o
}

func optionalSelector(s, field string) (calicoSelector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	sel, err := parseCalicoSelector(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return sel, nil
}

func compileCalico(s *calicov3.PolicySpec, namespace string) (calicoPolicy, error) {
	if s.Tier != "" && s.Tier != "default" {
		return calicoPolicy{}, fmt.Errorf("spec.tier %q: podsg has only Calico's default tier", s.Tier)
	}
	if s.Order != nil && (math.IsNaN(*s.Order) || math.IsInf(*s.Order, 0)) {
		return calicoPolicy{}, fmt.Errorf("spec.order: %v is not a number", *s.Order)
	}
	sel, err := parseCalicoSelector(s.Selector)
	if err != nil {
		return calicoPolicy{}, fmt.Errorf("spec.selector: %w", err)
	}
	p := calicoPolicy{namespace: namespace, selector: sel, rules: map[Direction][]calicoRule{}}
	if p.serviceAccounts, err = optionalSelector(s.ServiceAccountSelector, "spec.serviceAccountSelector"); err != nil {
		return calicoPolicy{}, err
	}
	if p.types, err = calicoTypes(s); err != nil {
		return calicoPolicy{}, err
	}
	for d, rules := range map[Direction][]calicov3.Rule{Ingress: s.Ingress, Egress: s.Egress} {
		for i := range rules {
			r, err := compileCalicoRule(fmt.Sprintf("spec.%s[%d]", d, i), &rules[i], namespace)
			if err != nil {
				return calicoPolicy{}, err
			}
			p.rules[d] = append(p.rules[d], r)
		}
	}
	return p, nil
}

// calicoTypes are the directions the policy applies to: as given, or defaulted as Calico
// does (Ingress, plus Egress with egress rules; only Egress with egress rules and no ingress).
func calicoTypes(s *calicov3.PolicySpec) (map[Direction]bool, error) {
	types := map[Direction]bool{}
	for i, t := range s.Types {
		switch t {
		case calicov3.PolicyTypeIngress:
			types[Ingress] = true
		case calicov3.PolicyTypeEgress:
			types[Egress] = true
		default:
			return nil, fmt.Errorf("spec.types[%d]: %q is not Ingress or Egress", i, t)
		}
	}
	if len(s.Types) == 0 {
		types[Ingress] = len(s.Ingress) > 0 || len(s.Egress) == 0
		types[Egress] = len(s.Egress) > 0
	}
	return types, nil
}

func compileCalicoRule(field string, r *calicov3.Rule, namespace string) (calicoRule, error) {
	out := calicoRule{name: field, action: r.Action}
	if err := refuseRuleFields(field, r); err != nil {
		return calicoRule{}, err
	}
	if r.IPVersion != nil {
		out.family = *r.IPVersion
	}
	if r.Protocol != nil {
		p, err := calicoProtocol(*r.Protocol)
		if err != nil {
			return calicoRule{}, fmt.Errorf("%s.protocol: %w", field, err)
		}
		out.protocol = p
	}
	var err error
	if out.src, err = compileEntity(field+".source", &r.Source, namespace, ""); err != nil {
		return calicoRule{}, err
	}
	if out.dst, err = compileEntity(field+".destination", &r.Destination, namespace, out.protocol); err != nil {
		return calicoRule{}, err
	}
	return out, nil
}

// refuseRuleFields refuses the rule's fields podsg does not enforce, and what Calico refuses.
func refuseRuleFields(field string, r *calicov3.Rule) error {
	if !slices.Contains([]calicov3.Action{calicov3.Allow, calicov3.Deny, calicov3.Log, calicov3.Pass}, r.Action) {
		return fmt.Errorf("%s.action: %q is not Allow, Deny, Log or Pass", field, r.Action)
	}
	switch {
	case r.NotProtocol != nil:
		return fmt.Errorf("%s.notProtocol: not supported by podsg", field)
	case r.ICMP != nil || r.NotICMP != nil:
		return fmt.Errorf("%s: icmp and notICMP type/code matches are not supported by podsg", field)
	case r.HTTP != nil:
		return fmt.Errorf("%s.http: HTTP matches need Calico's application layer (Istio); podsg does not enforce them", field)
	case r.IPVersion != nil && *r.IPVersion != 4 && *r.IPVersion != 6:
		return fmt.Errorf("%s.ipVersion: %d is not 4 or 6", field, *r.IPVersion)
	case len(r.Source.Ports) > 0 || len(r.Source.NotPorts) > 0:
		return fmt.Errorf("%s.source: source ports are not supported by podsg", field)
	}
	return nil
}

// calicoProtocol maps a rule's protocol (a name or a number) to the connection's.
func calicoProtocol(p intstr.IntOrString) (corev1.Protocol, error) {
	byNumber := map[int]corev1.Protocol{1: ProtocolICMP, 6: corev1.ProtocolTCP, 17: corev1.ProtocolUDP, 132: corev1.ProtocolSCTP}
	if p.Type == intstr.Int {
		if out, ok := byNumber[p.IntValue()]; ok {
			return out, nil
		}
		return "", fmt.Errorf("protocol %d: podsg supports TCP (6), UDP (17), SCTP (132) and ICMP (1)", p.IntValue())
	}
	if n, err := strconv.ParseInt(p.StrVal, 10, 32); err == nil {
		return calicoProtocol(intstr.FromInt32(int32(n)))
	}
	switch strings.ToUpper(p.StrVal) {
	case "TCP", "UDP", "SCTP", "ICMP":
		return corev1.Protocol(strings.ToUpper(p.StrVal)), nil
	}
	return "", fmt.Errorf("protocol %q: podsg supports TCP, UDP, SCTP and ICMP", p.StrVal)
}

func compileEntity(field string, e *calicov3.EntityRule, namespace string, proto corev1.Protocol) (calicoEntity, error) {
	out, err := compileEntityPeers(field, e, namespace)
	if err != nil || len(e.Ports) == 0 && len(e.NotPorts) == 0 {
		return out, err
	}
	out.ports, out.notPorts, err = compileEntityPorts(field, e, proto)
	return out, err
}

// compileEntityPeers compiles who the end is: nets and pod criteria.
func compileEntityPeers(field string, e *calicov3.EntityRule, namespace string) (calicoEntity, error) {
	var out calicoEntity
	if e.Services != nil {
		return out, fmt.Errorf("%s.services: not supported by podsg", field)
	}
	var err error
	if out.nets, err = cidrs(field+".nets", e.Nets); err != nil {
		return out, err
	}
	if out.notNets, err = cidrs(field+".notNets", e.NotNets); err != nil {
		return out, err
	}
	if out.selector, err = optionalSelector(e.Selector, field+".selector"); err != nil {
		return out, err
	}
	if out.notSelector, err = optionalSelector(e.NotSelector, field+".notSelector"); err != nil {
		return out, err
	}
	if out.scope.namespaces, err = optionalSelector(e.NamespaceSelector, field+".namespaceSelector"); err != nil {
		return out, err
	}
	if out.scope.namespaces == nil {
		out.scope.namespace = namespace
	}
	if sa := e.ServiceAccounts; sa != nil {
		out.scope.sa, out.scope.saNames = true, sa.Names
		if out.scope.saSelector, err = optionalSelector(sa.Selector, field+".serviceAccounts.selector"); err != nil {
			return out, err
		}
	}
	out.pods = out.selector != nil || out.notSelector != nil || out.scope.namespaces != nil || out.scope.sa
	return out, nil
}

func cidrs(field string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, n := range in {
		c, err := cidr(n, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// compileEntityPorts compiles the destination's ports and notPorts, which Calico accepts only
// with a protocol that has ports.
func compileEntityPorts(field string, e *calicov3.EntityRule, proto corev1.Protocol) (ports, notPorts []portSpec, err error) {
	if proto != corev1.ProtocolTCP && proto != corev1.ProtocolUDP && proto != corev1.ProtocolSCTP {
		return nil, nil, fmt.Errorf("%s: ports need the rule's protocol to be TCP, UDP or SCTP", field)
	}
	for i, p := range e.Ports {
		s, err := calicoPort(proto, p)
		if err != nil {
			return nil, nil, fmt.Errorf("%s.ports[%d]: %w", field, i, err)
		}
		ports = append(ports, s)
	}
	for i, p := range e.NotPorts {
		s, err := calicoPort(proto, p)
		if err == nil && s.named != "" {
			err = fmt.Errorf("named ports in notPorts are not supported by podsg")
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s.notPorts[%d]: %w", field, i, err)
		}
		notPorts = append(notPorts, s)
	}
	if len(notPorts) > 0 && slices.ContainsFunc(ports, func(s portSpec) bool { return s.named != "" }) {
		return nil, nil, fmt.Errorf("%s: named ports with notPorts are not supported by podsg", field)
	}
	return ports, notPorts, nil
}

// calicoPort reads 80, "80", "80:90" or a port name.
func calicoPort(proto corev1.Protocol, p intstr.IntOrString) (portSpec, error) {
	s := p.String()
	lo, hi, isRange := strings.Cut(s, ":")
	from, errFrom := strconv.ParseUint(lo, 10, 16)
	to, errTo := from, error(nil)
	if isRange {
		to, errTo = strconv.ParseUint(hi, 10, 16)
	}
	switch {
	case errFrom != nil && !isRange:
		if s == "" {
			return portSpec{}, fmt.Errorf("empty port")
		}
		return portSpec{proto: proto, named: s}, nil
	case errFrom != nil || errTo != nil:
		return portSpec{}, fmt.Errorf("%q is not within 0..65535 (FROM:TO with FROM <= TO), nor a name", s)
	case from > to:
		return portSpec{}, fmt.Errorf("%q is not within 0..65535 (FROM:TO with FROM <= TO)", s)
	}
	if from == 0 && to == 0 {
		return portSpec{}, fmt.Errorf("port 0 matches no packet")
	}
	return portSpec{proto: proto, from: int32(max(from, 1)), to: int32(to)}, nil
}

// Name implements Layer.
func (t *CalicoTier) Name() string { return CalicoTierLayer }

// Judge implements Layer (see CalicoTier for the walk).
func (t *CalicoTier) Judge(d Direction, c Connection) Step {
	subject, peer := c.subject(d)
	var applied []string
	calicoApplied := false
	for _, e := range t.entries {
		var applies bool
		var step *Step
		if e.knp != nil {
			applies, step = e.judgeKNP(d, peer, c)
		} else {
			applies, step = e.judgeCalico(d, subject, c)
			calicoApplied = calicoApplied || applies
		}
		if step != nil {
			return *step
		}
		if applies {
			applied = append(applied, e.name)
		}
	}
	switch {
	case len(applied) == 0:
		return Step{Layer: CalicoTierLayer, Verdict: NoDecision, Why: fmt.Sprintf("no Calico policy or NetworkPolicy applies to the pod for %s", d)}
	case !calicoApplied && subject.NodeName != "" && peer.nodeName() == subject.NodeName:
		return Step{Layer: CalicoTierLayer, Verdict: NoDecision,
			Why: "traffic between a pod and its own node is always allowed by NetworkPolicy"}
	}
	return Step{Layer: CalicoTierLayer, Verdict: Deny, Policy: strings.Join(applied, ","), Rule: "(end of tier)",
		Why: fmt.Sprintf("policies apply to the pod for %s and none of their rules allows this", d)}
}

// judgeKNP is a Kubernetes NetworkPolicy's say: whether it selects the pod, and the step of
// its first rule that allows the connection, if one does.
func (e tierEntry) judgeKNP(d Direction, peer Endpoint, c Connection) (bool, *Step) {
	subject, _ := c.subject(d)
	if !e.knp.selects(subject, d) {
		return false, nil
	}
	for _, r := range e.knp.rules[d] {
		if r.matches(peer, c) {
			return true, &Step{Layer: CalicoTierLayer, Verdict: Accept, Policy: e.name, Rule: r.name,
				Why: fmt.Sprintf("a rule of a NetworkPolicy selecting the pod allows %s (order %d in Calico's default tier)", d, KubernetesNetworkPolicyOrder)}
		}
	}
	return true, nil
}

// judgeCalico is a Calico policy's say: whether it applies to the pod, and the step of its
// first matching rule that Allows, Denies or Passes (Log goes on to the next rule).
func (e tierEntry) judgeCalico(d Direction, subject *Pod, c Connection) (bool, *Step) {
	if !e.calico.applies(subject, d) {
		return false, nil
	}
	for _, r := range e.calico.rules[d] {
		if !r.matches(c) || r.action == calicov3.Log {
			continue
		}
		why := map[calicov3.Action]string{calicov3.Allow: "the first matching rule allows", calicov3.Deny: "the first matching rule denies",
			calicov3.Pass: "the first matching rule passes to the next tier"}[r.action]
		return true, &Step{Layer: CalicoTierLayer, Verdict: calicoVerdict(r.action), Policy: e.name, Rule: r.name, Why: why}
	}
	return true, nil
}

// applies reports whether the policy polices the pod's traffic in direction d.
func (p *calicoPolicy) applies(pod *Pod, d Direction) bool {
	if !p.types[d] || p.namespace != "" && p.namespace != pod.Namespace {
		return false
	}
	return p.selector.matches(calicoPodLabels(pod)) &&
		(p.namespaces == nil || p.namespaces.matches(calicoNamespaceLabels(pod))) &&
		(p.serviceAccounts == nil || p.serviceAccounts.matches(calicoServiceAccountLabels(pod)))
}

func (r calicoRule) matches(c Connection) bool {
	switch {
	case r.protocol != "" && c.Protocol != r.protocol:
		return false
	case r.family == 4 && !c.Dst.IP.Is4(), r.family == 6 && !c.Dst.IP.Is6():
		return false
	}
	return r.src.matches(c.Src) && r.dst.matches(c.Dst) && r.dst.portMatches(c)
}

// matches reports whether the end e of a connection is one the entity names (ports aside).
func (en calicoEntity) matches(e Endpoint) bool {
	return en.inNets(e.IP) && (!en.pods || en.podMatches(e.policyPod()))
}

// podMatches applies the entity's pod criteria to pod (nil: not a pod). A selector or an
// explicit scope (namespaceSelector, serviceAccounts) asks for a pod in scope; notSelector
// excludes the pods in scope it matches, so that an address that is no pod passes it.
func (en calicoEntity) podMatches(pod *Pod) bool {
	inScope := pod != nil && en.scope.contains(pod)
	explicit := en.scope.namespaces != nil || en.scope.sa
	switch {
	case (explicit || en.selector != nil) && !inScope:
		return false
	case en.selector != nil && !en.selector.matches(calicoPodLabels(pod)):
		return false
	case en.notSelector != nil && inScope && en.notSelector.matches(calicoPodLabels(pod)):
		return false
	}
	return true
}

func (s calicoScope) contains(pod *Pod) bool {
	switch {
	case s.namespaces != nil && !s.namespaces.matches(calicoNamespaceLabels(pod)):
		return false
	case s.namespaces == nil && s.namespace != "" && pod.Namespace != s.namespace:
		return false
	case !s.sa:
		return true
	case len(s.saNames) > 0 && !slices.Contains(s.saNames, pod.ServiceAccount):
		return false
	}
	return s.saSelector == nil || s.saSelector.matches(calicoServiceAccountLabels(pod))
}

func (en calicoEntity) portMatches(c Connection) bool {
	inSpec := func(s portSpec) bool {
		if s.named != "" {
			return namedPortIs(c.Dst.policyPod(), s.named, s.proto, c.Port)
		}
		return s.proto == c.Protocol && s.from <= c.Port && c.Port <= s.to
	}
	return (len(en.ports) == 0 || slices.ContainsFunc(en.ports, inSpec)) && !slices.ContainsFunc(en.notPorts, inSpec)
}

// calicoPodLabels are the labels Calico's selectors see on a pod's endpoint.
func calicoPodLabels(p *Pod) map[string]string {
	l := make(map[string]string, len(p.Labels)+3)
	for k, v := range p.Labels {
		l[k] = v
	}
	l[CalicoNamespaceLabel], l[CalicoOrchestratorLabel] = p.Namespace, "k8s"
	l[CalicoServiceAccountLabel] = cmp.Or(p.ServiceAccount, "default")
	return l
}

func calicoNamespaceLabels(p *Pod) map[string]string {
	l := map[string]string(namespaceLabelSet(p))
	l[CalicoNameLabel] = p.Namespace
	return l
}

func calicoServiceAccountLabels(p *Pod) map[string]string {
	l := make(map[string]string, len(p.ServiceAccountLabels)+1)
	for k, v := range p.ServiceAccountLabels {
		l[k] = v
	}
	l[CalicoNameLabel] = cmp.Or(p.ServiceAccount, "default")
	return l
}

// WithCalico is Standard with Calico's default tier (Calico's policies and the Kubernetes
// NetworkPolicies at order 1000) in place of the NetworkPolicy layer.
func WithCalico(cnps []cnpv1.ClusterNetworkPolicy, nps []networkingv1.NetworkPolicy,
	gnps []calicov3.GlobalNetworkPolicy, calicoNPs []calicov3.NetworkPolicy) (*Evaluator, error) {
	admin, err := NewClusterTier(cnpv1.AdminTier, cnps)
	if err != nil {
		return nil, err
	}
	tier, err := NewCalicoTier(gnps, calicoNPs, nps)
	if err != nil {
		return nil, err
	}
	baseline, err := NewClusterTier(cnpv1.BaselineTier, cnps)
	if err != nil {
		return nil, err
	}
	return NewEvaluator(admin, tier, baseline), nil
}
