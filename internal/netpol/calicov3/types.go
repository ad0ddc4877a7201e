package calicov3

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// GlobalNetworkPolicy is Calico's cluster-wide policy: it applies to the endpoints of every
// namespace its selectors match.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=gnp
// +kubebuilder:printcolumn:name="Order",type=number,JSONPath=`.spec.order`
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.selector`
type GlobalNetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec GlobalNetworkPolicySpec `json:"spec,omitempty"`
}

// GlobalNetworkPolicyList is a list of GlobalNetworkPolicy.
//
// +kubebuilder:object:root=true
type GlobalNetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GlobalNetworkPolicy `json:"items"`
}

// GlobalNetworkPolicySpec is a NetworkPolicySpec with the fields only a global policy has.
type GlobalNetworkPolicySpec struct {
	PolicySpec `json:",inline"`

	// NamespaceSelector restricts the policy to endpoints in the namespaces it selects
	// (Calico selector syntax); empty: every namespace.
	// +optional
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// DoNotTrack, PreDNAT and ApplyOnForward are host-endpoint options; podsg refuses them.
	// +optional
	DoNotTrack bool `json:"doNotTrack,omitempty"`
	// +optional
	PreDNAT bool `json:"preDNAT,omitempty"`
	// +optional
	ApplyOnForward bool `json:"applyOnForward,omitempty"`
}

// NetworkPolicy is Calico's namespaced policy: it applies to endpoints of its namespace.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=cnp
// +kubebuilder:printcolumn:name="Order",type=number,JSONPath=`.spec.order`
// +kubebuilder:printcolumn:name="Selector",type=string,JSONPath=`.spec.selector`
type NetworkPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec NetworkPolicySpec `json:"spec,omitempty"`
}

// NetworkPolicyList is a list of NetworkPolicy.
//
// +kubebuilder:object:root=true
type NetworkPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []NetworkPolicy `json:"items"`
}

// NetworkPolicySpec is the namespaced policy's spec.
type NetworkPolicySpec struct {
	PolicySpec `json:",inline"`
}

// PolicySpec is what both kinds of policy share.
type PolicySpec struct {
	// Tier is the policy's tier; podsg has only Calico's "default".
	// +optional
	Tier string `json:"tier,omitempty"`
	// Order: policies apply lower order first; a policy without one applies after all that
	// have one. Kubernetes NetworkPolicies count as order 1000.
	// +optional
	Order *float64 `json:"order,omitempty"`
	// Selector chooses the endpoints the policy applies to (Calico selector syntax, e.g.
	// `all()`, `role == "db"`); empty: all().
	// +optional
	Selector string `json:"selector,omitempty"`
	// ServiceAccountSelector further restricts the endpoints to those whose service
	// account's labels it matches.
	// +optional
	ServiceAccountSelector string `json:"serviceAccountSelector,omitempty"`
	// Types are the directions the policy applies to; omitted: Ingress, plus Egress when it
	// has egress rules (only Egress when it has egress rules and no ingress rules).
	// +optional
	Types []PolicyType `json:"types,omitempty"`
	// +optional
	Ingress []Rule `json:"ingress,omitempty"`
	// +optional
	Egress []Rule `json:"egress,omitempty"`
	// PerformanceHints are hints to Calico's data plane; kept, and without effect here.
	// +optional
	PerformanceHints []string `json:"performanceHints,omitempty"`
}

// PolicyType is a direction a policy applies to.
// +kubebuilder:validation:Enum=Ingress;Egress
type PolicyType string

// The two policy types.
const (
	PolicyTypeIngress PolicyType = "Ingress"
	PolicyTypeEgress  PolicyType = "Egress"
)

// Action is what a rule does with the traffic it matches.
// +kubebuilder:validation:Enum=Allow;Deny;Log;Pass
type Action string

// Calico's four actions: Log records and goes on to the next rule; Pass skips the rest of
// the tier.
const (
	Allow Action = "Allow"
	Deny  Action = "Deny"
	Log   Action = "Log"
	Pass  Action = "Pass"
)

// Rule is one ingress or egress rule.
type Rule struct {
	Action Action `json:"action"`
	// IPVersion 4 or 6 restricts the rule to that family.
	// +optional
	IPVersion *int `json:"ipVersion,omitempty"`
	// Protocol is a name (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite) or a number 1..255.
	// +optional
	Protocol *intstr.IntOrString `json:"protocol,omitempty"`
	// +optional
	NotProtocol *intstr.IntOrString `json:"notProtocol,omitempty"`
	// +optional
	ICMP *ICMPFields `json:"icmp,omitempty"`
	// +optional
	NotICMP *ICMPFields `json:"notICMP,omitempty"`
	// +optional
	Source EntityRule `json:"source,omitempty"`
	// +optional
	Destination EntityRule `json:"destination,omitempty"`
	// +optional
	HTTP *HTTPMatch `json:"http,omitempty"`
	// +optional
	Metadata *RuleMetadata `json:"metadata,omitempty"`
}

// ICMPFields match an ICMP type and code.
type ICMPFields struct {
	// +optional
	Type *int `json:"type,omitempty"`
	// +optional
	Code *int `json:"code,omitempty"`
}

// HTTPMatch is Calico's application-layer match (with Istio); podsg refuses it.
type HTTPMatch struct {
	// +optional
	Methods []string `json:"methods,omitempty"`
	// +optional
	Paths []HTTPPath `json:"paths,omitempty"`
}

// HTTPPath is an exact path or a prefix.
type HTTPPath struct {
	// +optional
	Exact string `json:"exact,omitempty"`
	// +optional
	Prefix string `json:"prefix,omitempty"`
}

// RuleMetadata are annotations on a rule.
type RuleMetadata struct {
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// EntityRule is one end of a rule's traffic: every field given must match.
type EntityRule struct {
	// Nets: the address is in one of them.
	// +optional
	Nets []string `json:"nets,omitempty"`
	// NotNets: the address is in none of them.
	// +optional
	NotNets []string `json:"notNets,omitempty"`
	// Selector: the endpoint's labels match (Calico selector syntax).
	// +optional
	Selector string `json:"selector,omitempty"`
	// NotSelector: the endpoint's labels do not match.
	// +optional
	NotSelector string `json:"notSelector,omitempty"`
	// NamespaceSelector: the endpoint's namespace's labels match; empty means the policy's
	// own namespace for a NetworkPolicy, and every namespace for a GlobalNetworkPolicy.
	// +optional
	NamespaceSelector string `json:"namespaceSelector,omitempty"`
	// Ports: numbers, ranges "80:90", or names of the endpoint's container ports.
	// +optional
	Ports []intstr.IntOrString `json:"ports,omitempty"`
	// +optional
	NotPorts []intstr.IntOrString `json:"notPorts,omitempty"`
	// ServiceAccounts: the endpoint runs as one of these service accounts.
	// +optional
	ServiceAccounts *ServiceAccountMatch `json:"serviceAccounts,omitempty"`
	// Services: the endpoints of a Kubernetes Service; podsg refuses it.
	// +optional
	Services *ServiceMatch `json:"services,omitempty"`
}

// ServiceAccountMatch matches endpoints by their service account: by name, by the account's
// labels (selector), or both.
type ServiceAccountMatch struct {
	// +optional
	Names []string `json:"names,omitempty"`
	// +optional
	Selector string `json:"selector,omitempty"`
}

// ServiceMatch names a Kubernetes Service.
type ServiceMatch struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}
