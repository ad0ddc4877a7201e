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

	// WarmBranchesPerNode keeps this many branch ENIs carrying exactly this policy's groups
	// idle on every trunk node, made ahead of pods from the EC2 request budget that pod work
	// leaves, so that a pod given exactly these groups starts with no EC2 call. Unset means
	// podsg-controller's --warm-branches-per-node. Additive to AWS's CRD.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=120
	// +optional
	WarmBranchesPerNode *int32 `json:"warmBranchesPerNode,omitempty"`

	// UpdatePolicy says what happens to the running pods this policy selects when the groups
	// their policies give them change. None (the default, AWS's behaviour): only pods created
	// afterwards get the new groups. InPlace: the groups of their branch ENIs are changed in
	// place, paced by the EC2 request budget, without restarting them; pods running on their
	// node's ENI (admitted before any policy selected them) must be recreated, and the status
	// counts them. Additive to AWS's CRD.
	// +kubebuilder:validation:Enum=None;InPlace
	// +optional
	UpdatePolicy UpdatePolicy `json:"updatePolicy,omitempty"`
}

// UpdatePolicy is how running pods follow a change of their groups.
type UpdatePolicy string

// Update policies.
const (
	UpdatePolicyNone    UpdatePolicy = "None"
	UpdatePolicyInPlace UpdatePolicy = "InPlace"
)

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

	// Pods counts the live pods this policy selects by how their branch ENI stands against the
	// groups their policies give them now.
	// +optional
	Pods *PodGroupsStatus `json:"pods,omitempty"`

	// Conditions: GroupsFound (every group exists in the cluster's VPC), WithinQuota (the union
	// with other matching policies fits the per-ENI security group quota) and Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PodGroupsStatus counts a policy's pods by how their groups stand.
type PodGroupsStatus struct {
	// Current pods have a branch ENI carrying the groups their policies give them now.
	Current int32 `json:"current"`
	// Pending pods have a branch ENI carrying other groups: changed in place with
	// updatePolicy InPlace, kept until they are recreated otherwise.
	Pending int32 `json:"pending"`
	// NeedRecreation pods run on their node's ENI, admitted before any policy selected them:
	// only a new pod gets a branch ENI.
	NeedRecreation int32 `json:"needRecreation"`
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
