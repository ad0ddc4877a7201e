package netpol

import (
	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
)

// Layer is one source of policy. Judge gives its verdict on one direction of a connection;
// it is only asked when the direction's subject pod exists (Connection.subject). Rules gives
// the same decisions as rules resolved to addresses, for a data path (Compile): for every
// connection, the first of them that matches has Judge's verdict, and none matching means
// NoDecision.
type Layer interface {
	Name() string
	Judge(d Direction, c Connection) Step
	Rules(d Direction, subject *Pod, u *Universe) []Rule
}

// Evaluator judges connections through its layers, in order.
type Evaluator struct {
	layers []Layer
}

// NewEvaluator returns an evaluator of the layers in the order given: for Kubernetes,
// Admin tier, NetworkPolicy, Baseline tier (see Standard).
func NewEvaluator(layers ...Layer) *Evaluator {
	return &Evaluator{layers: layers}
}

// Layers returns the layers in order, for a compiler that follows them.
func (e *Evaluator) Layers() []Layer { return e.layers }

// Evaluate judges both directions of c.
func (e *Evaluator) Evaluate(c Connection) Result {
	eg, in := e.judge(Egress, c), e.judge(Ingress, c)
	return Result{Allowed: eg.Allowed && in.Allowed, Egress: eg, Ingress: in}
}

func (e *Evaluator) judge(d Direction, c Connection) Judgement {
	if subject, _ := c.subject(d); subject == nil || c.selfTraffic() {
		// Not a pod whose policies apply here, or a pod talking to itself: Kubernetes has no
		// policy that can block a pod's access to itself.
		return Judgement{Allowed: true}
	}
	j := Judgement{Enforced: true}
	for _, l := range e.layers {
		s := l.Judge(d, c)
		j.Steps = append(j.Steps, s)
		switch s.Verdict {
		case Accept:
			j.Allowed = true
			return j
		case Deny:
			return j
		case Pass, NoDecision:
		}
	}
	// No layer decided: pods may talk to each other unless a policy says otherwise.
	j.Allowed = true
	return j
}

// Standard is the evaluator of Kubernetes' layers: ClusterNetworkPolicy's Admin tier,
// NetworkPolicy, ClusterNetworkPolicy's Baseline tier.
func Standard(cnps []cnpv1.ClusterNetworkPolicy, nps []networkingv1.NetworkPolicy) (*Evaluator, error) {
	admin, err := NewClusterTier(cnpv1.AdminTier, cnps)
	if err != nil {
		return nil, err
	}
	np, err := NewNetworkPolicies(nps)
	if err != nil {
		return nil, err
	}
	baseline, err := NewClusterTier(cnpv1.BaselineTier, cnps)
	if err != nil {
		return nil, err
	}
	return NewEvaluator(admin, np, baseline), nil
}
