package explain

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
)

// want is one expected finding: whether it is a problem, and a fragment of its text.
type want struct {
	problem bool
	text    string
}

func groups(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("sg-%017x", i+1))
	}
	return out
}

// waiting is allocated before the controller annotated the pod.
func waiting(r *Report) *Report {
	r.Annotation, r.Events = Annotation{}, nil
	return r
}

func TestDiagnose(t *testing.T) {
	hasENI := want{false, "The pod has branch ENI eni-0b1 (VLAN 1, 10.0.0.12), created by podsg-controller with the groups admission resolved: [" + sgA + " " + sgB + "]"}
	selectedNow := want{true, "Policy my-sg-policy selects this pod now, but the pod did not request a branch ENI when it was created, so it has the security groups of its node's primary ENI"}
	tests := map[string]struct {
		report *Report
		want   []want
	}{
		"allocated": {allocated(), []want{hasENI}},
		"allocated, EC2 agrees in another order": {withEC2(allocated()), []want{hasENI,
			{false, "EC2 confirms: eni-0b1 carries exactly the admitted groups [" + sgB + " " + sgA + "]"}}},
		"EC2 drift": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0].ENI.SecurityGroups = []string{sgA} }), []want{hasENI,
			{true, "Drift: in EC2, eni-0b1 carries [" + sgA + "], but the pod was admitted with [" + sgA + " " + sgB + "]"}}},
		"branch not associated": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0].Association = nil }), []want{hasENI,
			{false, "EC2 confirms"}, {true, "Branch ENI eni-0b1 is not associated with trunk eni-0t1 of node node-1"}}},
		"VLAN differs from the annotation": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0].Association.VLAN = 2 }), []want{hasENI,
			{false, "EC2 confirms"}, {true, "associated with VLAN 2, but the annotation says VLAN 1"}}},
		"instance has no trunk": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Trunk.ID, r.EC2.Branches[0].Association = "", nil }), []want{hasENI,
			{false, "EC2 confirms"}, {true, "Instance i-0123456789abcdef0 of node node-1 has no trunk ENI"}}},
		"trunk lookup failed": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Trunk.Err, r.EC2.Branches[0].Association = "throttled", nil }), []want{hasENI,
			{false, "EC2 confirms"}, {true, "The trunk association of eni-0b1 could not be checked: throttled"}}},
		"branch deleted in EC2": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0] = Branch{ID: "eni-0b1", Annotated: true} }), []want{hasENI,
			{true, "Branch ENI eni-0b1, named in the pod's annotation, does not exist in EC2"}}},
		"annotation names another pod's ENI": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0].ENI.Tags[cloud.TagPodUID] = "uid-2" }), []want{hasENI,
			{true, "tagged for pod UID uid-2, not this pod's uid-1"}, {false, "EC2 confirms"}}},
		"EC2 unreachable": {edit(withEC2(allocated()), func(r *Report) { r.EC2 = &EC2Report{Err: "no credentials"} }), []want{hasENI,
			{true, "EC2 could not be checked: no credentials"}}},
		"branch created, annotation not written yet": {edit(withEC2(waiting(allocated())), func(r *Report) { r.EC2.Branches[0].Annotated = false }), []want{
			{true, "podsg-controller has not annotated the pod yet"}, {true, "Branch ENI eni-0b1 was created for this pod but is not in its annotation"}}},

		"host network": {edit(unmarked(allocated()), func(r *Report) { r.Pod.HostNetwork = true }), []want{{false, "The pod uses the host network"}}},
		"windows":      {edit(unmarked(allocated()), func(r *Report) { r.Pod.Windows = true }), []want{{false, "The pod runs on Windows"}}},
		"no policy in the namespace": {edit(unmarked(allocated()), func(r *Report) { r.Policies, r.Union, r.UnionPolicies = nil, nil, nil }),
			[]want{{false, "No SecurityGroupPolicy exists in namespace shop, so the pod has the security groups of its node's primary ENI."}}},
		"no policy selects the pod": {edit(unmarked(allocated()), func(r *Report) { r.Policies, r.Union, r.UnionPolicies = r.Policies[1:], nil, nil }),
			[]want{{false, "No SecurityGroupPolicy in namespace shop selects this pod, so it has the security groups of its node's primary ENI. " +
				"To give it groups, make a policy's podSelector match the pod's labels or its serviceAccountSelector match the labels of ServiceAccount rds-db-access"}}},
		"policies unreadable": {edit(unmarked(allocated()), func(r *Report) {
			r.Policies, r.Union, r.PoliciesErr = nil, nil, "the SecurityGroupPolicy CRD is not installed"
		}),
			[]want{{true, "the policies could not be evaluated: the SecurityGroupPolicy CRD is not installed"}}},
		"selected now, policy created after the pod": {edit(unmarked(allocated()), func(r *Report) { r.Policies[0].Created = r.Pod.Created.Add(time.Second) }),
			[]want{selectedNow, {true, "Likely cause: policy my-sg-policy was created after the pod."}}},
		"selected by two policies now": {edit(unmarked(allocated()), func(r *Report) { r.UnionPolicies = []string{"a", "b"} }),
			[]want{{true, "Policies a, b select this pod now"}, {true, "Likely cause"}}},
		"selected now, namespace excluded": {edit(unmarked(allocated()), func(r *Report) { r.Webhook.NamespaceExcluded = true }),
			[]want{selectedNow, {true, "Likely cause: namespace shop is excluded by the webhook's namespaceSelector (kubernetes.io/metadata.name notin (kube-system,podsg-system))"}}},
		"selected now, object selector excludes": {edit(unmarked(allocated()), func(r *Report) { r.Webhook.ObjectExcluded, r.Webhook.ObjectSelector = true, "x=y" }),
			[]want{selectedNow, {true, "Likely cause: the pod's labels do not match the webhook's objectSelector (x=y)."}}},
		"selected now, webhook not registered": {edit(unmarked(allocated()), func(r *Report) { r.Webhook = Webhook{} }),
			[]want{selectedNow, {true, "Likely cause: podsg's mutating webhook (path /mutate-v1-pod) is not registered"}}},
		"selected now, webhook unknown": {edit(unmarked(allocated()), func(r *Report) { r.Webhook = Webhook{Err: "forbidden"} }),
			[]want{selectedNow, {true, "Likely cause: unknown: podsg's webhook could not be checked (forbidden)."}}},
		"selected now, webhook registered after the pod": {edit(unmarked(allocated()), func(r *Report) { r.Webhook.Created = r.Pod.Created.Add(time.Minute) }),
			[]want{selectedNow, {true, "Likely cause: the webhook podsg-mutating-webhook/mpod.podsg.io was registered after the pod was created."}}},
		"selected now, ServiceAccount created after the pod": {edit(unmarked(allocated()), func(r *Report) { r.Pod.ServiceAccountCreated = r.Pod.Created.Add(time.Minute) }),
			[]want{selectedNow, {true, "Likely cause: ServiceAccount rds-db-access was created after the pod."}}},
		"selected now, no visible cause": {unmarked(allocated()),
			[]want{selectedNow, {true, "Likely cause: the pod's labels, the labels of its ServiceAccount or a policy's selectors changed after the pod was created."}}},

		"request without admission": {edit(waiting(allocated()), func(r *Report) { r.Pod.AdmittedGroups = nil }),
			[]want{{true, "has no podsg.io/security-groups annotation, so podsg's webhook did not admit it"}}},
		"policies changed since admission": {edit(allocated(), func(r *Report) { r.Union, r.UnionPolicies = []string{sgC}, []string{"web"} }), []want{hasENI,
			{true, "The pod was admitted with [" + sgA + " " + sgB + "], but the policies give [" + sgC + "] now. A pod keeps the groups resolved at its admission"}}},
		"no policy selects it any more": {edit(allocated(), func(r *Report) { r.Union, r.UnionPolicies = nil, nil }), []want{hasENI,
			{true, "but no policy selects it any more: recreated, it would run with its node's groups"}}},
		"six groups": {edit(waiting(allocated()), func(r *Report) { r.Pod.AdmittedGroups, r.Union = groups(6), groups(6) }), []want{
			{true, "has not annotated"}, {true, "6 groups are more than EC2's default quota of 5 per ENI"}}},
		"seventeen groups": {edit(waiting(allocated()), func(r *Report) { r.Pod.AdmittedGroups, r.Union = groups(17), groups(17) }), []want{
			{true, "has not annotated"}, {true, "17 groups are more than EC2 allows on one ENI (16)"}}},
		"annotation unusable": {edit(allocated(), func(r *Report) { r.Annotation.Err = "eniId \"x\" is not an ENI id" }),
			[]want{{true, "The vpc.amazonaws.com/pod-eni annotation is unusable, so the CNI plugin cannot wire the pod: eniId \"x\" is not an ENI id."}}},
		"not scheduled": {edit(waiting(allocated()), func(r *Report) {
			r.Pod.NodeName, r.Node = "", Node{}
			r.Pod.Unscheduled = "Unschedulable: 0/1 nodes are available: 1 Insufficient vpc.amazonaws.com/pod-eni."
		}), []want{{true, "The pod is not scheduled yet (Unschedulable: 0/1 nodes are available: 1 Insufficient vpc.amazonaws.com/pod-eni.). " +
			"It requests vpc.amazonaws.com/pod-eni, which only nodes with a trunk ENI advertise"}}},
		"node without trunk": {edit(waiting(allocated()), func(r *Report) { r.Node.TrunkLabel = "false" }),
			[]want{{true, `Node node-1 has no trunk ENI (label vpc.amazonaws.com/has-trunk-attached="false")`}}},
		"allocation failing": {edit(waiting(allocated()), func(r *Report) {
			r.Events = []Event{
				{Type: corev1.EventTypeWarning, Reason: "BranchAllocationFailed", Message: "first", From: v1beta1.ReportingController},
				{Type: corev1.EventTypeNormal, Reason: "SecurityGroupRequested", Message: "groups", From: v1beta1.ReportingController},
				{Type: corev1.EventTypeWarning, Reason: "BranchAllocationFailed", Message: "creating branch ENI: quota", From: v1beta1.ReportingController},
				{Type: corev1.EventTypeWarning, Reason: "FailedCreatePodSandBox", Message: "not the controller's", From: "kubelet"},
			}
		}), []want{{true, "podsg-controller has not annotated the pod yet: no branch ENI is allocated. Its last warning: BranchAllocationFailed: creating branch ENI: quota"}}},
		"controller silent": {waiting(allocated()),
			[]want{{true, "podsg-controller has not annotated the pod yet: no branch ENI is allocated. It has recorded no event about the pod: is podsg-controller running?"}}},
		"finished": {edit(waiting(allocated()), func(r *Report) { r.Pod.Phase, r.Pod.Terminal = string(corev1.PodSucceeded), true }),
			[]want{{false, "The pod has finished (Succeeded)"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Diagnose(tc.report)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), findings(got))
			}
			for i, w := range tc.want {
				if got[i].Problem != w.problem || !strings.Contains(got[i].Text, w.text) {
					t.Errorf("finding %d = %+v, want problem=%v containing %q", i, got[i], w.problem, w.text)
				}
			}
		})
	}
}

func edit(r *Report, f func(*Report)) *Report {
	f(r)
	return r
}

func findings(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  problem=%v %s\n", f.Problem, f.Text)
	}
	return b.String()
}
