package netpol

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// ProtocolICMP is a connection's protocol when it is ICMP: no policy port matches it, so only
// rules without ports (or protocols) do.
const ProtocolICMP corev1.Protocol = "ICMP"

// NamespaceNameLabel is the label the apiserver gives every namespace, naming it.
const NamespaceNameLabel = "kubernetes.io/metadata.name"

// Pod is what policies see of a pod.
type Pod struct {
	Namespace, Name string
	// NodeName is the node the pod runs on: traffic between a pod and its own node is always
	// allowed by NetworkPolicy (the kubelet's probes come from there).
	NodeName string
	Labels   map[string]string
	// NamespaceLabels are the labels of the pod's namespace; NamespaceNameLabel is implied.
	NamespaceLabels map[string]string
	ServiceAccount  string
	// ServiceAccountLabels are the labels of the pod's ServiceAccount (Calico's
	// serviceAccounts selectors match them).
	ServiceAccountLabels map[string]string
	// Ports are the containers' ports, which named policy ports resolve against.
	Ports []corev1.ContainerPort
	IPs   []netip.Addr
	// HostNetwork pods are not selected by policies, nor matched by pod peers: their traffic
	// has the node's address.
	HostNetwork bool
}

// Node is what policies see of a node (ClusterNetworkPolicy's nodes peer).
type Node struct {
	Name   string
	Labels map[string]string
	IPs    []netip.Addr
}

// Endpoint is one end of a connection: a pod, a node, or an address outside the cluster
// (Pod and Node nil). IP is the address the connection uses. A host-network pod's traffic is
// its node's: give it Node as well, for ClusterNetworkPolicy's nodes peer.
type Endpoint struct {
	Pod  *Pod
	Node *Node
	IP   netip.Addr
}

// policyPod is the pod policies apply to at this end, or nil (not a pod, or host network).
func (e Endpoint) policyPod() *Pod {
	if e.Pod == nil || e.Pod.HostNetwork {
		return nil
	}
	return e.Pod
}

// nodeName is the node whose own traffic this is: a node, or a host-network pod on it.
func (e Endpoint) nodeName() string {
	switch {
	case e.Node != nil:
		return e.Node.Name
	case e.Pod != nil && e.Pod.HostNetwork:
		return e.Pod.NodeName
	}
	return ""
}

func (e Endpoint) String() string {
	if e.Pod != nil {
		return fmt.Sprintf("pod/%s/%s (%s)", e.Pod.Namespace, e.Pod.Name, e.IP)
	}
	if e.Node != nil {
		return fmt.Sprintf("node/%s (%s)", e.Node.Name, e.IP)
	}
	return e.IP.String()
}

// Connection is what is judged: its first packet, from Src to Dst. Port is the destination
// port (0 for ICMP).
type Connection struct {
	Src, Dst Endpoint
	Protocol corev1.Protocol
	Port     int32
}

func (c Connection) String() string {
	if c.Protocol == ProtocolICMP {
		return fmt.Sprintf("%s -> %s icmp", c.Src, c.Dst)
	}
	return fmt.Sprintf("%s -> %s %s/%d", c.Src, c.Dst, c.Protocol, c.Port)
}

// Direction is the side of a connection a policy rule judges.
type Direction string

// The two directions: egress from the source pod, ingress to the destination pod.
const (
	Egress  Direction = "egress"
	Ingress Direction = "ingress"
)

// selfTraffic reports whether the connection stays within one pod, which no policy can block.
func (c Connection) selfTraffic() bool {
	return c.Src.Pod != nil && c.Dst.Pod != nil && c.Src.Pod.Namespace == c.Dst.Pod.Namespace && c.Src.Pod.Name == c.Dst.Pod.Name
}

// subject is the pod the direction's policies apply to, and peer the other end.
func (c Connection) subject(d Direction) (subject *Pod, peer Endpoint) {
	if d == Egress {
		return c.Src.policyPod(), c.Dst
	}
	return c.Dst.policyPod(), c.Src
}

// Verdict is what one layer says about one direction of a connection.
type Verdict string

// A layer accepts or denies (final), passes (the next layer decides), or has no rule that
// applies (NoDecision: the next layer decides too).
const (
	Accept     Verdict = "Accept"
	Deny       Verdict = "Deny"
	Pass       Verdict = "Pass"
	NoDecision Verdict = "NoDecision"
)

// Step is one layer's verdict, and the policy and rule that gave it.
type Step struct {
	Layer   string
	Verdict Verdict
	// Policy and Rule name what decided ("" when no rule applied); Why says it in words.
	Policy, Rule, Why string
}

func (s Step) String() string {
	if s.Policy == "" {
		return fmt.Sprintf("%s: %s (%s)", s.Layer, s.Verdict, s.Why)
	}
	return fmt.Sprintf("%s: %s by %s %s (%s)", s.Layer, s.Verdict, s.Policy, s.Rule, s.Why)
}

// Judgement is one direction's outcome: every layer's step until one decided.
type Judgement struct {
	// Enforced is false when this end is not a pod whose policies apply (then Allowed).
	Enforced bool
	Allowed  bool
	Steps    []Step
}

// Decider is the step that decided, if a layer did (else Kubernetes' default allowed).
func (j Judgement) Decider() (Step, bool) {
	if n := len(j.Steps); n > 0 && (j.Steps[n-1].Verdict == Accept || j.Steps[n-1].Verdict == Deny) {
		return j.Steps[n-1], true
	}
	return Step{}, false
}

// Result is the verdict on a connection: both directions must allow it.
type Result struct {
	Allowed         bool
	Egress, Ingress Judgement
}
