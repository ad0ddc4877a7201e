package explain

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/podidentity"
)

const (
	sgA = "sg-0aaaaaaaaaaaaaaaa"
	sgB = "sg-0bbbbbbbbbbbbbbbb"
	sgC = "sg-0cccccccccccccccc"
)

var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

// allocated is the seed tutorial's pod after a successful allocation: selected through its
// ServiceAccount, annotated, with the controller's two events. Cases change what they test.
func allocated() *Report {
	created := now.Add(-time.Hour)
	return &Report{
		Now: now,
		Pod: Pod{Namespace: "shop", Name: "api", UID: "uid-1", Created: created, Phase: "Running", NodeName: "node-1",
			Labels: map[string]string{"app": "api"}, ServiceAccount: "rds-db-access", ServiceAccountFound: true,
			ServiceAccountLabels: map[string]string{"role": "backend"}, ServiceAccountCreated: created.Add(-time.Hour),
			RequestsENI: true, RequestContainer: "app", AdmittedGroups: []string{sgA, sgB}},
		Node: Node{Name: "node-1", Found: true, ProviderID: "aws:///us-west-2a/i-0123456789abcdef0", TrunkLabel: "true", Capacity: "17"},
		Webhook: Webhook{Registered: true, Name: "podsg-mutating-webhook/mpod.podsg.io", Created: created.Add(-2 * time.Hour),
			NamespaceSelector: "kubernetes.io/metadata.name notin (kube-system,podsg-system)"},
		Policies: []Policy{
			{Name: "my-sg-policy", Created: created.Add(-time.Hour), Groups: []string{sgA, sgB}, Selected: true,
				ServiceAccountSelector: Selector{Set: true, Text: "role=backend", Matches: true}},
			{Name: "web", Created: created.Add(-time.Hour), Groups: []string{sgC},
				PodSelector: Selector{Set: true, Text: "app=web", Unmet: []string{"app=web"}}},
		},
		Union: []string{sgA, sgB}, UnionPolicies: []string{"my-sg-policy"},
		Annotation: Annotation{Present: true, ENIs: []v1beta1.PodENI{{ENIID: "eni-0b1", IfAddress: "02:00:00:00:00:01",
			PrivateIP: "10.0.0.12", VLANID: 1, SubnetCIDR: "10.0.0.0/20", AssociationID: "trunk-assoc-1"}}},
		Events: []Event{
			{Time: now.Add(-59 * time.Minute), Type: corev1.EventTypeNormal, Reason: "SecurityGroupRequested",
				Message: "Pod will get the following Security Groups [" + sgA + " " + sgB + "]", From: v1beta1.ReportingController},
			{Time: now.Add(-58 * time.Minute), Type: corev1.EventTypeNormal, Reason: "ResourceAllocated",
				Message: "Allocated [...] to the pod", From: v1beta1.ReportingController},
		},
		Identity: Identity{TokenFile: podidentity.TokenFile(&corev1.Pod{}), Containers: []IdentityContainer{{Name: "app"}},
			Webhook: Webhook{Registered: true, Name: "podsg-mutating-webhook/mpodidentity.podsg.io", Created: created.Add(-2 * time.Hour),
				NamespaceSelector: "kubernetes.io/metadata.name notin (kube-system,podsg-system)",
				ObjectSelector:    "!eks.amazonaws.com/skip-pod-identity-webhook"}},
	}
}

// withEC2 adds EC2's view of allocated's branch: its groups as admitted, associated under
// the annotation's VLAN.
func withEC2(r *Report) *Report {
	r.EC2 = &EC2Report{
		Trunk: Trunk{InstanceID: "i-0123456789abcdef0", ID: "eni-0t1"},
		Branches: []Branch{{ID: "eni-0b1", Found: true, Annotated: true,
			ENI: cloud.NetworkInterface{ID: "eni-0b1", Type: cloud.InterfaceTypeBranch, Status: "in-use", PrivateIP: "10.0.0.12",
				SubnetID: "subnet-1", SecurityGroups: []string{sgB, sgA}, Tags: map[string]string{cloud.TagPodUID: "uid-1"}},
			Association: &cloud.TrunkAssociation{ID: "trunk-assoc-1", TrunkID: "eni-0t1", BranchID: "eni-0b1", VLAN: 1}}},
	}
	return r
}

// unmarked is a pod the webhook did not mark: no request, no annotations, no events.
func unmarked(r *Report) *Report {
	r.Pod.RequestsENI, r.Pod.AdmittedGroups = false, nil
	r.Annotation, r.Events = Annotation{}, nil
	return r
}
