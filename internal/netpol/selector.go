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

// namespaceLabels are the pod's namespace's labels with the name label the apiserver adds.
func namespaceLabels(p *Pod) labels.Set {
	set := labels.Set{NamespaceNameLabel: p.Namespace}
	for k, v := range p.NamespaceLabels {
		set[k] = v
	}
	return set
}

// podSelection selects pods by namespace and pod labels; a nil selector matches every one.
type podSelection struct {
	namespaces, pods labels.Selector
}

func (s podSelection) matches(p *Pod) bool {
	if p == nil {
		return false
	}
	return (s.namespaces == nil || s.namespaces.Matches(namespaceLabels(p))) &&
		(s.pods == nil || s.pods.Matches(labels.Set(p.Labels)))
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
