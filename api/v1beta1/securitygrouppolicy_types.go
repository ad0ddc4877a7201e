package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Well-known names shared by the controller, the webhook and the node agent. They keep AWS's
// spelling so that either side can be swapped for AWS's own component.
const (
	// ResourcePodENI is the extended resource a pod requests to get a branch ENI, and that a
	// trunk node advertises as capacity.
	ResourcePodENI = "vpc.amazonaws.com/pod-eni"
	// AnnotationPodENI carries the JSON list of branch ENIs allocated to a pod (AWS format).
	AnnotationPodENI = "vpc.amazonaws.com/pod-eni"
	// LabelHasTrunkAttached is set to "false" by the node agent to ask for a trunk ENI and to
	// "true" by the controller once the trunk is attached.
	LabelHasTrunkAttached = "vpc.amazonaws.com/has-trunk-attached"
	// AnnotationSecurityGroups is ours (additive to AWS's format): the security groups that
	// admission resolved for the pod, comma-separated, so that allocation uses exactly what
	// admission decided instead of re-evaluating policies later.
	AnnotationSecurityGroups = "podsg.io/security-groups"
)

// SecurityGroupPolicy assigns EC2 security groups to the pods it selects, within its namespace.
// A pod selected by several policies gets the union of their groups.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=sgp
// +kubebuilder:printcolumn:name="Security-Group-Ids",type=string,JSONPath=`.spec.securityGroups.groupIds`
// +kubebuilder:printcolumn:name="Matched-Pods",type=integer,JSONPath=`.status.matchedPods`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SecurityGroupPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec SecurityGroupPolicySpec `json:"spec"`
	// +optional
	Status SecurityGroupPolicyStatus `json:"status,omitzero"`
}

// SecurityGroupPolicySpec selects pods and names the security groups they get.
//
// AWS silently ignores a policy with neither selector; we reject it at admission so that a typo
// in a selector field name never leaves pods on the node's security groups unnoticed.
//
// +kubebuilder:validation:XValidation:rule="has(self.podSelector) || has(self.serviceAccountSelector)",message="at least one of podSelector or serviceAccountSelector must be set; use podSelector: {} to select every pod in the namespace"
type SecurityGroupPolicySpec struct {
	// PodSelector selects pods by their labels. {} selects every pod of the namespace.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`

	// ServiceAccountSelector selects pods by the labels of their ServiceAccount. {} selects every
	// ServiceAccount. When both selectors are set, a pod must match both.
	// +optional
	ServiceAccountSelector *metav1.LabelSelector `json:"serviceAccountSelector,omitempty"`

	// SecurityGroups are applied to the branch ENI of every selected pod.
	// +required
	SecurityGroups GroupIDs `json:"securityGroups"`
}

// GroupIDs lists EC2 security group ids.
type GroupIDs struct {
	// Groups is the list of security group ids, e.g. sg-0123456789abcdef0. EC2 allows at most 16
	// groups per network interface (5 by default), so a longer list can never be applied; a
	// group id may appear once (listType=set makes the apiserver reject duplicates).
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Pattern=`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`
	// +kubebuilder:validation:items:MaxLength=20
	// +listType=set
	// +required
	Groups []string `json:"groupIds"`
}

// SecurityGroupPolicyStatus is filled in by podsg-controller; AWS's CRD has none.
type SecurityGroupPolicyStatus struct {
	// ObservedGeneration is the spec generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// MatchedPods counts the pods of the namespace this policy currently selects.
	// +optional
	MatchedPods int32 `json:"matchedPods"`

	// Conditions: GroupsFound (every group exists in the cluster's VPC), WithinQuota (the union
	// with other matching policies fits the per-ENI security group quota) and Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types of SecurityGroupPolicyStatus.
const (
	ConditionGroupsFound = "GroupsFound"
	ConditionWithinQuota = "WithinQuota"
	ConditionReady       = "Ready"
)

// SecurityGroupPolicyList is a list of SecurityGroupPolicy.
//
// +kubebuilder:object:root=true
type SecurityGroupPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SecurityGroupPolicy `json:"items"`
}
