package explain

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
)

// TestRenderGolden pins two whole reports: the seed pod allocated and confirmed by EC2, and a
// pod the webhook missed because its policy came later.
func TestRenderGolden(t *testing.T) {
	tests := map[string]struct {
		report *Report
		want   string
	}{
		"allocated, EC2 agrees": {withEC2(allocated()), `Pod shop/api
  node:             node-1 (trunk attached, vpc.amazonaws.com/pod-eni allocatable: 17)
  service account:  rds-db-access (labels: role=backend)
  phase:            Running
  labels:           app=api
  branch ENI:       requested: container "app" requests vpc.amazonaws.com/pod-eni (podsg's webhook adds it at creation)
  admitted groups:  [sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb] (podsg.io/security-groups: resolved at admission, the groups the controller uses)
  webhook:          podsg-mutating-webhook/mpod.podsg.io, namespaceSelector kubernetes.io/metadata.name notin (kube-system,podsg-system): sees pods of namespace shop

SecurityGroupPolicies in shop
  my-sg-policy: SELECTS the pod; groups [sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb]
    podSelector             not set
    serviceAccountSelector  role=backend: matches ServiceAccount rds-db-access's labels (role=backend)
  web: does not select the pod; groups [sg-0cccccccccccccccc]
    podSelector             app=web: does not match the pod's labels (app=api); unmet: app=web
    serviceAccountSelector  not set
  groups the pod should get: [sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb], the union of my-sg-policy
  (policies are combined in name order, each group once, in the order the policy lists it; nothing is
  truncated: EC2 allows 5 groups per ENI by default, 16 at most, and a longer union fails the branch ENI)

Annotation vpc.amazonaws.com/pod-eni
  eni-0b1  IP 10.0.0.12  VLAN 1  subnet 10.0.0.0/20  MAC 02:00:00:00:00:01  association trunk-assoc-1

Events (podsg-controller's, and warnings)
  59m   Normal  SecurityGroupRequested: Pod will get the following Security Groups [sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb]
  58m   Normal  ResourceAllocated: Allocated [...] to the pod

EC2
  trunk: eni-0t1 on instance i-0123456789abcdef0
  branch eni-0b1: type branch, status in-use, IP 10.0.0.12, subnet subnet-1
    groups:      [sg-0bbbbbbbbbbbbbbbb sg-0aaaaaaaaaaaaaaaa] (as admitted)
    association: trunk-assoc-1, VLAN 1 on trunk eni-0t1

IAM role (IRSA, ServiceAccount rds-db-access)
  role:             none: the ServiceAccount has no eks.amazonaws.com/role-arn annotation
  webhook:          podsg-mutating-webhook/mpodidentity.podsg.io, namespaceSelector kubernetes.io/metadata.name notin (kube-system,podsg-system), objectSelector !eks.amazonaws.com/skip-pod-identity-webhook: sees pods of namespace shop

Diagnosis
  - The pod has branch ENI eni-0b1 (VLAN 1, 10.0.0.12), created by podsg-controller with the groups admission resolved: [sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb].
  - EC2 confirms: eni-0b1 carries exactly the admitted groups [sg-0bbbbbbbbbbbbbbbb sg-0aaaaaaaaaaaaaaaa].
`},
		"missed by admission": {edit(unmarked(allocated()), func(r *Report) {
			r.Pod.ServiceAccount, r.Pod.ServiceAccountFound, r.Pod.ServiceAccountLabels = "default", false, nil
			r.Pod.Labels = map[string]string{"app": "web"}
			r.Policies[1].Created, r.Policies[1].Selected = r.Pod.Created.Add(time.Minute), true
			r.Policies[1].PodSelector = Selector{Set: true, Text: "app=web", Matches: true}
			r.Policies[0].ServiceAccountSelector = Selector{Set: true, Text: "role=backend", Unmet: []string{"role=backend"}}
			r.Policies[0].Selected = false
			r.Union, r.UnionPolicies = []string{sgC}, []string{"web"}
		}), `Pod shop/api
  node:             node-1 (trunk attached, vpc.amazonaws.com/pod-eni allocatable: 17)
  service account:  default (does not exist: no labels for a serviceAccountSelector to match)
  phase:            Running
  labels:           app=web
  branch ENI:       not requested: no container requests vpc.amazonaws.com/pod-eni, so the pod gets an IP of one of its node's ENIs, which carry the primary ENI's groups
  webhook:          podsg-mutating-webhook/mpod.podsg.io, namespaceSelector kubernetes.io/metadata.name notin (kube-system,podsg-system): sees pods of namespace shop

SecurityGroupPolicies in shop
  my-sg-policy: does not select the pod; groups [sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb]
    podSelector             not set
    serviceAccountSelector  role=backend: does not match ServiceAccount default (does not exist); unmet: role=backend
  web: SELECTS the pod; groups [sg-0cccccccccccccccc]
    podSelector             app=web: matches the pod's labels (app=web)
    serviceAccountSelector  not set
  groups the pod should get: [sg-0cccccccccccccccc], the union of web
  (policies are combined in name order, each group once, in the order the policy lists it; nothing is
  truncated: EC2 allows 5 groups per ENI by default, 16 at most, and a longer union fails the branch ENI)

Annotation vpc.amazonaws.com/pod-eni
  absent: no branch ENI allocated

Events (podsg-controller's, and warnings)
  none

EC2
  not checked: pass --ec2 to ask AWS, or --ec2-endpoint URL for the local VPC

IAM role (IRSA, ServiceAccount default)
  role:             none: the ServiceAccount does not exist
  webhook:          podsg-mutating-webhook/mpodidentity.podsg.io, namespaceSelector kubernetes.io/metadata.name notin (kube-system,podsg-system), objectSelector !eks.amazonaws.com/skip-pod-identity-webhook: sees pods of namespace shop

Diagnosis
  ! Policy web selects this pod now, but the pod did not request a branch ENI when it was created, so it has the security groups of its node's primary ENI: pods are matched once, at admission. Recreate the pod (delete it; its Deployment or other owner makes a new one) once no cause below applies any more.
  ! Likely cause: policy web was created after the pod.
`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Render(tc.report); got != tc.want {
				t.Errorf("Render:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestRender checks the lines that vary with a report's facts.
func TestRender(t *testing.T) {
	tests := map[string]struct {
		report *Report
		lines  []string
	}{
		"not scheduled": {edit(waiting(allocated()), func(r *Report) { r.Pod.NodeName, r.Pod.Unscheduled = "", "Unschedulable: 0/1 nodes are available" }),
			[]string{"  node:             not scheduled (Unschedulable: 0/1 nodes are available)"}},
		"node unreadable": {edit(allocated(), func(r *Report) { r.Node = Node{Name: "node-1", Err: "forbidden"} }),
			[]string{"  node:             node-1 (forbidden)"}},
		"node asks for a trunk": {edit(allocated(), func(r *Report) { r.Node.TrunkLabel, r.Node.Capacity = "false", "" }),
			[]string{"  node:             node-1 (trunk requested, not attached, vpc.amazonaws.com/pod-eni allocatable: none)"}},
		"host network": {edit(unmarked(allocated()), func(r *Report) { r.Pod.HostNetwork = true }),
			[]string{"  branch ENI:       not requested: host-network pods are skipped by the webhook"}},
		"namespace excluded": {edit(allocated(), func(r *Report) { r.Webhook.NamespaceExcluded = true }),
			[]string{"  webhook:          podsg-mutating-webhook/mpod.podsg.io, namespaceSelector kubernetes.io/metadata.name notin (kube-system,podsg-system): EXCLUDES namespace shop"}},
		"object selector excludes": {edit(allocated(), func(r *Report) { r.Webhook.ObjectSelector, r.Webhook.ObjectExcluded = "x=y", true }),
			[]string{", objectSelector x=y: sees pods of namespace shop, EXCLUDES this pod by its labels"}},
		"webhook not registered": {edit(allocated(), func(r *Report) { r.Webhook = Webhook{} }),
			[]string{"  webhook:          not registered: no pod is matched against policies"}},
		"webhook unreadable": {edit(allocated(), func(r *Report) { r.Webhook = Webhook{Err: "forbidden"} }),
			[]string{"  webhook:          unknown (forbidden)"}},
		"no policies": {edit(allocated(), func(r *Report) { r.Policies, r.Union = nil, nil }),
			[]string{"SecurityGroupPolicies in shop\n  none\n"}},
		"policies unreadable": {edit(allocated(), func(r *Report) { r.Policies, r.PoliciesErr = nil, "the SecurityGroupPolicy CRD is not installed" }),
			[]string{"SecurityGroupPolicies in shop\n  unknown: the SecurityGroupPolicy CRD is not installed\n"}},
		"nothing selects": {edit(allocated(), func(r *Report) { r.Union, r.UnionPolicies = nil, nil }),
			[]string{"  groups the pod should get: none, no policy selects it"}},
		"both selectors": {edit(allocated(), func(r *Report) {
			r.Policies[1].ServiceAccountSelector = Selector{Set: true, Text: "role=backend", Matches: true}
		}), []string{"    serviceAccountSelector  role=backend: matches ServiceAccount rds-db-access's labels (role=backend)\n    both selectors are set: both must match"}},
		"no selector": {edit(allocated(), func(r *Report) { r.Policies[1].PodSelector = Selector{} }),
			[]string{"  web: does not select the pod; groups [sg-0cccccccccccccccc]\n    neither selector is set: the policy selects nothing"}},
		"unusable selector": {edit(allocated(), func(r *Report) {
			r.Policies[1].PodSelector = Selector{Set: true, Text: "<error>", Err: "parsing selector: bad operator"}
			r.Policies[1].Err = "parsing selector: bad operator"
		}), []string{"    podSelector             <error>: unusable (parsing selector: bad operator), never matches", "    unusable: parsing selector: bad operator"}},
		"policy status": {edit(allocated(), func(r *Report) {
			r.Policies[1].Problems = []string{"GroupsFound=False (GroupsNotFound): sg-0cccccccccccccccc does not exist"}
		}), []string{"    status: GroupsFound=False (GroupsNotFound): sg-0cccccccccccccccc does not exist"}},
		"annotation unparsable": {edit(allocated(), func(r *Report) { r.Annotation = Annotation{Present: true, Raw: "{", Err: "decoding: unexpected end"} }),
			[]string{"Annotation vpc.amazonaws.com/pod-eni\n  unusable: decoding: unexpected end\n"}},
		"annotation invalid": {edit(allocated(), func(r *Report) {
			r.Annotation = Annotation{Present: true, ENIs: []v1beta1.PodENI{{ENIID: "x"}}, Err: "eniId \"x\" is not an ENI id"}
		}), []string{"  x  IP ?  VLAN 0  subnet ?  MAC ?\n  invalid: eniId \"x\" is not an ENI id\n"}},
		"repeated warning": {edit(waiting(allocated()), func(r *Report) {
			r.Events = []Event{{Time: now.Add(-90 * time.Second), Type: corev1.EventTypeWarning, Reason: "BranchAllocationFailed", Message: "quota", Count: 3}}
		}), []string{"  90s   Warning BranchAllocationFailed (x3): quota"}},
		"events unreadable": {edit(allocated(), func(r *Report) { r.Events, r.EventsErr = nil, "forbidden" }),
			[]string{"Events (podsg-controller's, and warnings)\n  unknown: forbidden\n"}},
		"EC2 drift": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0].ENI.SecurityGroups = []string{sgC} }),
			[]string{"    groups:      [sg-0cccccccccccccccc] (DRIFT: admitted [sg-0aaaaaaaaaaaaaaaa sg-0bbbbbbbbbbbbbbbb])"}},
		"EC2 not associated": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0].Association = nil }),
			[]string{"    association: none on trunk eni-0t1"}},
		"EC2 branch gone": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0] = Branch{ID: "eni-0b1", Annotated: true} }),
			[]string{"  branch eni-0b1: does not exist"}},
		"EC2 describe failed": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0] = Branch{ID: "eni-0b1", Err: "throttled"} }),
			[]string{"  branch eni-0b1: unknown (throttled)"}},
		"EC2 no branch": {edit(withEC2(waiting(allocated())), func(r *Report) { r.EC2.Branches = nil }),
			[]string{"  branch ENIs: none for this pod"}},
		"EC2 no trunk": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Trunk.ID = "" }),
			[]string{"  trunk: none on instance i-0123456789abcdef0"}},
		"EC2 unreachable": {edit(withEC2(allocated()), func(r *Report) { r.EC2 = &EC2Report{Err: "no credentials"} }),
			[]string{"EC2\n  unknown: no credentials\n"}},
		"EC2 branch of another kind": {edit(withEC2(allocated()), func(r *Report) { r.EC2.Branches[0].ENI.Type = cloud.InterfaceTypeInterface }),
			[]string{"  branch eni-0b1: type interface, status in-use"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Render(tc.report)
			for _, l := range tc.lines {
				if !strings.Contains(got, l) {
					t.Errorf("output lacks %q:\n%s", l, got)
				}
			}
		})
	}
}
