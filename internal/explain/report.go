// Package explain answers "why does (or doesn't) my pod have these security groups?", and
// "which IAM role does it have?": it gathers what decided a pod's groups (admission, the
// namespace's SecurityGroupPolicies, the controller's annotation and events, and optionally
// the branch ENI as EC2 sees it) and its role (its ServiceAccount's annotation, what the pod
// identity webhook gave each container) into a Report, diagnoses it, and renders it as text. Gathering does the I/O; Diagnose and Render
// are pure, so every explanation can be tested from a Report alone.
package explain

import (
	"time"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
)

// EC2's quota of security groups per network interface: 5 unless the account raised it, 16 at
// most. podsg-controller neither truncates nor reorders a pod's groups to fit: a longer union
// makes CreateNetworkInterface fail.
const (
	DefaultGroupsPerENI = 5
	MaxGroupsPerENI     = 16
)

// Report is everything explain learned about one pod.
type Report struct {
	// Now is when the report was gathered; event ages are relative to it.
	Now time.Time
	Pod Pod
	// Node is the pod's node; zero while the pod is not scheduled.
	Node Node
	// Webhook is podsg's mutating pod webhook as registered now.
	Webhook Webhook
	// Policies are the namespace's SecurityGroupPolicies, by name.
	Policies []Policy
	// PoliciesErr is set when the policies could not be listed (e.g. the CRD is missing).
	PoliciesErr string
	// Union is what the policies give the pod now: policy.PodGroups' result.
	Union []string
	// UnionPolicies names the policies that contribute to Union, by name.
	UnionPolicies []string
	// Annotation is the controller's vpc.amazonaws.com/pod-eni annotation.
	Annotation Annotation
	// Events are podsg-controller's events about the pod and everyone's warnings, oldest first.
	Events []Event
	// EventsErr is set when the events could not be listed.
	EventsErr string
	// EC2 is nil when EC2 was not asked.
	EC2 *EC2Report
	// Identity is the pod's IAM role (IRSA), from its ServiceAccount.
	Identity Identity
	// Traffic is nil unless EC2 was asked and the pod has a branch ENI.
	Traffic *Traffic
}

// Pod is what matters of the pod for its groups.
type Pod struct {
	Namespace, Name, UID string
	Created              time.Time
	Phase                string
	// Terminal: the pod has finished for good (policy.Terminal).
	Terminal bool
	NodeName string
	// Unscheduled is the PodScheduled=False condition's reason and message, if any.
	Unscheduled string
	Labels      map[string]string
	// ServiceAccount is the pod's ServiceAccount name; ServiceAccountFound is false when it
	// does not exist (its labels are then empty to every selector).
	ServiceAccount        string
	ServiceAccountFound   bool
	ServiceAccountLabels  map[string]string
	ServiceAccountCreated time.Time
	// HostNetwork and Windows pods are never given a branch ENI by the webhook.
	HostNetwork, Windows bool
	// RequestsENI: the pod asks for a branch ENI (policy.WantsBranchENI); the webhook's mark
	// is a vpc.amazonaws.com/pod-eni request on the first container.
	RequestsENI bool
	// RequestContainer names the container whose request says so.
	RequestContainer string
	// AdmittedGroups is the podsg.io/security-groups annotation: the groups admission resolved,
	// which are the only ones the controller will use. Nil when absent.
	AdmittedGroups []string
	// Probes are the containers' probes the kubelet sends to a port.
	Probes []Probe
}

// Node is what matters of the pod's node.
type Node struct {
	Name       string
	Found      bool
	ProviderID string
	// TrunkLabel is the vpc.amazonaws.com/has-trunk-attached label ("" when absent).
	TrunkLabel string
	// Capacity is the node's allocatable vpc.amazonaws.com/pod-eni ("" when not advertised).
	Capacity string
	Err      string
}

// Webhook is one of podsg's mutating pod webhooks, found by its path in the cluster's
// configurations.
type Webhook struct {
	// Err is set when the configurations could not be read; nothing else is known then.
	Err string
	// Registered: some configuration has a webhook serving the pod mutation path.
	Registered bool
	// Name is "<configuration>/<webhook>".
	Name string
	// Created is when that configuration was created.
	Created time.Time
	// NamespaceSelector is the webhook's namespaceSelector in kubectl's notation ("" for none).
	NamespaceSelector string
	// NamespaceExcluded: the namespace's labels do not match the namespaceSelector.
	NamespaceExcluded bool
	// ObjectSelector and ObjectExcluded: likewise for the pod's labels.
	ObjectSelector string
	ObjectExcluded bool
}

// Policy is one SecurityGroupPolicy's verdict on the pod.
type Policy struct {
	Name    string
	Created time.Time
	Groups  []string
	// Selected is policy.Selects' decision.
	Selected bool
	// Err names an unusable selector: such a policy selects nothing.
	Err                                 string
	PodSelector, ServiceAccountSelector Selector
	// Problems are the policy's status conditions that are False, e.g. a missing group.
	Problems []string
}

// Selector is one selector of a policy judged against the pod or its ServiceAccount.
type Selector struct {
	Set bool
	// Text is the selector in kubectl's notation; "{}" selects everything.
	Text    string
	Matches bool
	// Unmet lists the requirements the labels do not meet.
	Unmet []string
	Err   string
}

// Annotation is the vpc.amazonaws.com/pod-eni annotation.
type Annotation struct {
	Present bool
	Raw     string
	ENIs    []v1beta1.PodENI
	// Err is set when the value cannot be parsed or an element is invalid.
	Err string
}

// Event is one Kubernetes event about the pod.
type Event struct {
	Time    time.Time
	Type    string
	Reason  string
	Message string
	From    string
	Count   int32
}

// EC2Report is the pod's branch ENIs and the node's trunk as EC2 reports them.
type EC2Report struct {
	// Err is set when EC2 could not be asked at all.
	Err      string
	Branches []Branch
	Trunk    Trunk
}

// Branch is one branch ENI of the pod: named in the annotation, or tagged with the pod's UID.
type Branch struct {
	ID string
	// Found is false when EC2 does not know the ENI.
	Found bool
	Err   string
	ENI   cloud.NetworkInterface
	// Annotated: the pod's annotation names this ENI.
	Annotated bool
	// Association is the ENI's association with the node's trunk; nil when it has none.
	Association *cloud.TrunkAssociation
}

// Trunk is the node's trunk ENI.
type Trunk struct {
	InstanceID string
	// ID is "" when the instance has no trunk attached.
	ID string
	// Err is set when the trunk could not be looked up; associations are unknown then.
	Err string
}
