package netpol

import (
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// Selection is one policy that applies to a pod, and the directions it polices there.
// Policy is how the layer names it in its steps; Ref names the object (as Check's findings do).
type Selection struct {
	Layer, Policy string
	Ref           PolicyRef
	Directions    []Direction
}

// selectingLayer is a layer that can say which of its policies apply to a pod (`podsg
// explain pod`). Every layer of this package is one; a layer that is not is left out.
type selectingLayer interface {
	selections(p *Pod) []Selection
}

// Selecting lists the policies of every layer that apply to the pod, in the layers' order
// and each layer's own order. A host-network pod has none: policies do not select it.
func (e *Evaluator) Selecting(p *Pod) []Selection {
	if p == nil || p.HostNetwork {
		return nil
	}
	var out []Selection
	for _, l := range e.layers {
		if s, ok := l.(selectingLayer); ok {
			out = append(out, s.selections(p)...)
		}
	}
	return out
}

func directions(applies func(Direction) bool) []Direction {
	return slices.DeleteFunc([]Direction{Ingress, Egress}, func(d Direction) bool { return !applies(d) })
}

func (l *ClusterTier) selections(p *Pod) []Selection {
	var out []Selection
	for _, c := range l.policies {
		if c.subject.matches(p) {
			out = append(out, Selection{Layer: l.Name(), Policy: c.name, Ref: PolicyRef{Kind: KindClusterNetworkPolicy, Name: c.name},
				Directions: directions(func(d Direction) bool { return len(c.rules[d]) > 0 })})
		}
	}
	return out
}

func (l *NetworkPolicies) selections(p *Pod) []Selection {
	var out []Selection
	for i := range l.policies {
		np := &l.policies[i]
		if np.namespace == p.Namespace && np.pods.Matches(labels.Set(p.Labels)) {
			out = append(out, Selection{Layer: l.Name(), Policy: np.name, Ref: np.ref(),
				Directions: directions(func(d Direction) bool { return np.types[d] })})
		}
	}
	return out
}

func (t *CalicoTier) selections(p *Pod) []Selection {
	var out []Selection
	for _, e := range t.entries {
		var ds []Direction
		if e.knp != nil {
			ds = directions(func(d Direction) bool { return e.knp.selects(p, d) })
		} else {
			ds = directions(func(d Direction) bool { return e.calico.applies(p, d) })
		}
		if len(ds) > 0 {
			out = append(out, Selection{Layer: t.Name(), Policy: e.name, Ref: e.ref, Directions: ds})
		}
	}
	return out
}

// ref names the NetworkPolicy object (its name is namespace/name).
func (p *npPolicy) ref() PolicyRef {
	return PolicyRef{Kind: KindNetworkPolicy, Namespace: p.namespace, Name: strings.TrimPrefix(p.name, p.namespace+"/")}
}
