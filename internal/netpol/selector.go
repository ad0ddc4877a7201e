package netpol

import (
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// selector compiles a label selector; an absent one is nil here and its meaning (everything
// or nothing) is the caller's.
func selector(s *metav1.LabelSelector, field string) (labels.Selector, error) {
	if s == nil {
		return nil, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return sel, nil
}

// namespaceLabelSet is namespaceLabels copied into a map of its own, for a caller that adds
// labels of its own.
func namespaceLabelSet(p *Pod) labels.Set {
	set := labels.Set{NamespaceNameLabel: p.Namespace}
	for k, v := range p.NamespaceLabels {
		set[k] = v
	}
	return set
}

// namespaceLabels are the pod's namespace's labels with the name label the apiserver adds,
// read in place: selectors are matched against every pod for every rule, and copying the
// labels into a new map each time was most of the cost of compiling a node's ruleset.
type namespaceLabels struct{ p *Pod }

func (n namespaceLabels) Lookup(k string) (string, bool) {
	if k == NamespaceNameLabel {
		return n.p.Namespace, true
	}
	v, ok := n.p.NamespaceLabels[k]
	return v, ok
}

func (n namespaceLabels) Has(k string) bool { _, ok := n.Lookup(k); return ok }

func (n namespaceLabels) Get(k string) string { v, _ := n.Lookup(k); return v }

// podSelection selects pods by namespace and pod labels; a nil selector matches every one.
type podSelection struct {
	namespaces, pods labels.Selector
}

func (s podSelection) matches(p *Pod) bool {
	if p == nil {
		return false
	}
	return (s.pods == nil || s.pods.Matches(labels.Set(p.Labels))) &&
		(s.namespaces == nil || s.namespaces.Matches(namespaceLabels{p}))
}

// cidr parses a CIDR as the API gives it; a host address with bits set (10.0.0.1/24) is taken
// as its network, as Kubernetes' own validation once allowed.
func cidr(s, field string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s: %q is not a CIDR: %w", field, s, err)
	}
	return p.Masked(), nil
}
