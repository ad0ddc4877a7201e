package netpol

import (
	"fmt"

	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// PolicyRef names one policy object: its kind (the Kind* constants), namespace ("" for a
// cluster-scoped one) and name. Selection and Finding carry it, so that what explain lists
// and what Check finds meet on the same policy.
type PolicyRef struct {
	Kind, Namespace, Name string
}

func (r PolicyRef) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Refusal is a policy podsg-agent does not enforce, and why: Err names the policy and the field.
type Refusal struct {
	PolicyRef
	Err error
}

func (r Refusal) Error() string { return r.Err.Error() }

// Enforced splits the set into the policies podsg-agent enforces and those it refuses. Each
// policy is checked alone, as the agent compiles it, so that one refused policy leaves the
// others in force. This is the one definition of "enforced": podsg-agent builds its ruleset
// from the first part, podsg reach and podsg explain their evaluator, and Check reports the
// second as NotEnforced.
func (ps PolicySet) Enforced() (PolicySet, []Refusal) {
	var out PolicySet
	var refused []Refusal
	refuse := func(kind, ns, name string, err error) {
		refused = append(refused, Refusal{PolicyRef: PolicyRef{Kind: kind, Namespace: ns, Name: name}, Err: err})
	}
	for _, np := range ps.NetworkPolicies {
		if _, err := NewNetworkPolicies([]networkingv1.NetworkPolicy{np}); err != nil {
			refuse(KindNetworkPolicy, np.Namespace, np.Name, err)
			continue
		}
		out.NetworkPolicies = append(out.NetworkPolicies, np)
	}
	for _, c := range ps.ClusterPolicies {
		var err error
		if c.Spec.Tier != cnpv1.AdminTier && c.Spec.Tier != cnpv1.BaselineTier {
			err = fmt.Errorf("ClusterNetworkPolicy %s: spec.tier: %q is not %s or %s", c.Name, c.Spec.Tier, cnpv1.AdminTier, cnpv1.BaselineTier)
		} else {
			_, err = NewClusterTier(c.Spec.Tier, []cnpv1.ClusterNetworkPolicy{c})
		}
		if err != nil {
			refuse(KindClusterNetworkPolicy, "", c.Name, err)
			continue
		}
		out.ClusterPolicies = append(out.ClusterPolicies, c)
	}
	for _, g := range ps.GlobalNetworkPolicies {
		if _, err := NewCalicoTier([]calicov3.GlobalNetworkPolicy{g}, nil, nil); err != nil {
			refuse(KindGlobalNetworkPolicy, "", g.Name, err)
			continue
		}
		out.GlobalNetworkPolicies = append(out.GlobalNetworkPolicies, g)
	}
	for _, c := range ps.CalicoNetworkPolicies {
		if _, err := NewCalicoTier(nil, []calicov3.NetworkPolicy{c}, nil); err != nil {
			refuse(KindCalicoNetworkPolicy, c.Namespace, c.Name, err)
			continue
		}
		out.CalicoNetworkPolicies = append(out.CalicoNetworkPolicies, c)
	}
	return out, refused
}
