package explain

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/webhook"
)

// Finding is one conclusion about the pod. The first finding of a diagnosis answers the
// question; the others qualify it.
type Finding struct {
	// Problem: something the user has to act on for the pod to get the groups it should.
	Problem bool
	Text    string
}

func info(format string, args ...any) Finding {
	return Finding{Text: fmt.Sprintf(format, args...)}
}

func problem(format string, args ...any) Finding {
	return Finding{Problem: true, Text: fmt.Sprintf(format, args...)}
}

// Diagnose explains a report: which security groups the pod has or will get, and why not
// the ones the policies name, if so; then its IAM role.
func Diagnose(r *Report) []Finding {
	var out []Finding
	if r.Pod.RequestsENI {
		out = requested(r)
	} else {
		out = notRequested(r)
	}
	out = append(out, ec2Findings(r)...)
	out = append(out, trafficFindings(r)...)
	return append(out, identityFindings(r)...)
}

// notRequested: the webhook did not mark the pod at creation, so it runs on the node's ENI.
func notRequested(r *Report) []Finding {
	p := r.Pod
	nodeGroups := "so it has the security groups of its node's primary ENI"
	switch {
	case p.HostNetwork:
		return []Finding{info("The pod uses the host network: podsg's webhook never gives such pods a branch ENI, %s.", nodeGroups)}
	case p.Windows:
		return []Finding{info("The pod runs on Windows, where branch ENIs are not supported: podsg's webhook skips it, %s.", nodeGroups)}
	case r.PoliciesErr != "":
		return []Finding{problem("The pod did not request a branch ENI, %s; the policies could not be evaluated: %s.", nodeGroups, r.PoliciesErr)}
	case len(r.Union) == 0 && len(r.Policies) == 0:
		return []Finding{info("No SecurityGroupPolicy exists in namespace %s, so the pod has the security groups of its node's primary ENI.", p.Namespace)}
	case len(r.Union) == 0:
		return []Finding{info("No SecurityGroupPolicy in namespace %s selects this pod, so it has the security groups of its node's primary ENI. "+
			"To give it groups, make a policy's podSelector match the pod's labels or its serviceAccountSelector match the labels of "+
			"ServiceAccount %s, then recreate the pod: pods are matched only when they are created.", p.Namespace, p.ServiceAccount)}
	}
	selecting := "Policy " + r.UnionPolicies[0] + " selects"
	if len(r.UnionPolicies) > 1 {
		selecting = "Policies " + strings.Join(r.UnionPolicies, ", ") + " select"
	}
	out := []Finding{problem("%s this pod now, but the pod did not request a branch ENI when it was created, %s: "+
		"pods are matched once, at admission. Recreate the pod (delete it; its Deployment or other owner makes a new one) "+
		"once no cause below applies any more.",
		selecting, nodeGroups)}
	for _, c := range admissionCauses(r) {
		out = append(out, problem("Likely cause: %s.", c))
	}
	return out
}

// admissionCauses lists why admission may have missed a pod that policies select now.
func admissionCauses(r *Report) []string {
	p, w := r.Pod, r.Webhook
	var out []string
	switch {
	case w.Err != "" && !w.Registered:
		out = append(out, "unknown: podsg's webhook could not be checked ("+w.Err+")")
	case !w.Registered:
		out = append(out, fmt.Sprintf("podsg's mutating webhook (path %s) is not registered; podsg-controller registers it when it starts: is it running?", webhook.MutatePath))
	default:
		if w.Created.After(p.Created) {
			out = append(out, fmt.Sprintf("the webhook %s was registered after the pod was created", w.Name))
		}
		if w.NamespaceExcluded {
			out = append(out, fmt.Sprintf("namespace %s is excluded by the webhook's namespaceSelector (%s); podsg-controller exempts kube-system and its own namespace", p.Namespace, w.NamespaceSelector))
		}
		if w.ObjectExcluded {
			out = append(out, fmt.Sprintf("the pod's labels do not match the webhook's objectSelector (%s)", w.ObjectSelector))
		}
	}
	for _, pol := range r.Policies {
		if pol.Selected && pol.Created.After(p.Created) {
			out = append(out, fmt.Sprintf("policy %s was created after the pod", pol.Name))
		}
		if pol.Selected && pol.ServiceAccountSelector.Set && p.ServiceAccountCreated.After(p.Created) {
			out = append(out, fmt.Sprintf("ServiceAccount %s was created after the pod", p.ServiceAccount))
		}
	}
	if len(out) == 0 {
		out = append(out, "the pod's labels, the labels of its ServiceAccount or a policy's selectors changed after the pod was created")
	}
	return slices.Compact(out)
}

// requested: the webhook marked the pod; what stands between it and its branch ENI.
func requested(r *Report) []Finding {
	p := r.Pod
	if p.AdmittedGroups == nil {
		return []Finding{problem("The pod requests %s but has no %s annotation, so podsg's webhook did not admit it (the request was "+
			"written by hand or by another webhook). podsg-controller will not allocate a branch ENI for it (event NoSecurityGroups), "+
			"and never falls back to the node's groups. Recreate the pod.", v1beta1.ResourcePodENI, v1beta1.AnnotationSecurityGroups)}
	}
	out := annotationFindings(r)
	if !sameSet(p.AdmittedGroups, r.Union) {
		now := "no policy selects it any more: recreated, it would run with its node's groups"
		if len(r.Union) > 0 {
			now = "the policies give " + groupList(r.Union) + " now"
		}
		out = append(out, problem("The pod was admitted with %s, but %s. A pod keeps the groups resolved at its admission; "+
			"recreate it to apply the current policies.", groupList(p.AdmittedGroups), now))
	}
	switch n := len(p.AdmittedGroups); {
	case n > MaxGroupsPerENI:
		out = append(out, problem("%d groups are more than EC2 allows on one ENI (%d): the branch ENI cannot be created. "+
			"Split the policies so that no pod gets more than %d.", n, MaxGroupsPerENI, MaxGroupsPerENI))
	case n > DefaultGroupsPerENI:
		out = append(out, problem("%d groups are more than EC2's default quota of %d per ENI: unless the account's quota was raised "+
			"(at most %d), creating the branch ENI fails (event %s).", n, DefaultGroupsPerENI, MaxGroupsPerENI, "BranchAllocationFailed"))
	}
	return out
}

func annotationFindings(r *Report) []Finding {
	p, a := r.Pod, r.Annotation
	switch {
	case a.Present && a.Err != "":
		return []Finding{problem("The %s annotation is unusable, so the CNI plugin cannot wire the pod: %s.", v1beta1.AnnotationPodENI, a.Err)}
	case a.Present:
		var enis []string
		for _, e := range a.ENIs {
			enis = append(enis, fmt.Sprintf("%s (VLAN %d, %s)", e.ENIID, e.VLANID, e.PrivateIP))
		}
		return []Finding{info("The pod has branch ENI %s, created by podsg-controller with the groups admission resolved: %s.",
			strings.Join(enis, ", "), groupList(p.AdmittedGroups))}
	case p.Terminal:
		return []Finding{info("The pod has finished (%s): podsg-controller released its branch ENI, if it had one.", p.Phase)}
	case p.NodeName == "":
		why := ""
		if p.Unscheduled != "" {
			why = " (" + p.Unscheduled + ")"
		}
		return []Finding{problem("The pod is not scheduled yet%s. It requests %s, which only nodes with a trunk ENI advertise: "+
			"podsg-agent asks for a trunk by labelling its node %s=false, and podsg-controller attaches one if the instance type supports trunking.",
			why, v1beta1.ResourcePodENI, v1beta1.LabelHasTrunkAttached)}
	case r.Node.Found && r.Node.TrunkLabel != "true":
		return []Finding{problem("Node %s has no trunk ENI (label %s=%q): podsg-controller allocates the branch ENI once the trunk is attached; "+
			"the node's events say why it is not (kubectl describe node %s).", p.NodeName, v1beta1.LabelHasTrunkAttached, r.Node.TrunkLabel, p.NodeName)}
	}
	out := problem("podsg-controller has not annotated the pod yet: no branch ENI is allocated.")
	if e, ok := lastControllerWarning(r.Events); ok {
		out.Text += fmt.Sprintf(" Its last warning: %s: %s", e.Reason, e.Message)
	} else if !slices.ContainsFunc(r.Events, func(e Event) bool { return e.From == v1beta1.ReportingController }) && r.EventsErr == "" {
		out.Text += " It has recorded no event about the pod: is podsg-controller running?"
	}
	return []Finding{out}
}

func lastControllerWarning(events []Event) (Event, bool) {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].From == v1beta1.ReportingController && events[i].Type == corev1.EventTypeWarning {
			return events[i], true
		}
	}
	return Event{}, false
}

// ec2Findings compare the branch ENIs as EC2 has them with what the pod was given.
func ec2Findings(r *Report) []Finding {
	if r.EC2 == nil {
		return nil
	}
	if r.EC2.Err != "" {
		return []Finding{problem("EC2 could not be checked: %s.", r.EC2.Err)}
	}
	var out []Finding
	for _, b := range r.EC2.Branches {
		out = append(out, branchFindings(r, b)...)
	}
	if len(r.EC2.Branches) == 0 && r.Pod.RequestsENI && r.Annotation.Present {
		out = append(out, problem("EC2 knows no branch ENI of this pod."))
	}
	return out
}

func branchFindings(r *Report, b Branch) []Finding {
	switch {
	case b.Err != "":
		return []Finding{problem("EC2 could not describe %s: %s.", b.ID, b.Err)}
	case !b.Found:
		return []Finding{problem("Branch ENI %s, named in the pod's annotation, does not exist in EC2 (deleted outside podsg?): "+
			"the pod has no working network interface. Recreate the pod.", b.ID)}
	case !b.Annotated:
		return []Finding{problem("Branch ENI %s was created for this pod but is not in its annotation: allocation is under way or stuck "+
			"(see the events), or it is left over and will be swept.", b.ID)}
	}
	var out []Finding
	if uid := b.ENI.Tags[cloud.TagPodUID]; uid != "" && uid != r.Pod.UID {
		out = append(out, problem("Branch ENI %s is tagged for pod UID %s, not this pod's %s: the annotation names another pod's ENI.", b.ID, uid, r.Pod.UID))
	}
	if sameSet(b.ENI.SecurityGroups, r.Pod.AdmittedGroups) {
		out = append(out, info("EC2 confirms: %s carries exactly the admitted groups %s.", b.ID, groupList(b.ENI.SecurityGroups)))
	} else {
		out = append(out, problem("Drift: in EC2, %s carries %s, but the pod was admitted with %s. podsg sets an ENI's groups only when it "+
			"creates it, so they were changed outside podsg; change them back, or recreate the pod.",
			b.ID, groupList(b.ENI.SecurityGroups), groupList(r.Pod.AdmittedGroups)))
	}
	return append(out, associationFindings(r, b)...)
}

func associationFindings(r *Report, b Branch) []Finding {
	t := r.EC2.Trunk
	switch {
	case t.Err != "":
		return []Finding{problem("The trunk association of %s could not be checked: %s.", b.ID, t.Err)}
	case t.InstanceID == "":
		return nil // no node to check against
	case t.ID == "":
		return []Finding{problem("Instance %s of node %s has no trunk ENI, so branch %s carries no traffic.", t.InstanceID, r.Node.Name, b.ID)}
	case b.Association == nil:
		return []Finding{problem("Branch ENI %s is not associated with trunk %s of node %s: the pod's traffic cannot reach it.", b.ID, t.ID, r.Node.Name)}
	}
	for _, e := range r.Annotation.ENIs {
		if e.ENIID == b.ID && e.VLANID != b.Association.VLAN {
			return []Finding{problem("Branch ENI %s is associated with VLAN %d, but the annotation says VLAN %d: the CNI plugin wires the wrong VLAN.",
				b.ID, b.Association.VLAN, e.VLANID)}
		}
	}
	return nil
}

// sameSet compares groups regardless of order: EC2 need not return them as they were given.
func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(slices.Compact(x), slices.Compact(y))
}

func groupList(groups []string) string {
	if len(groups) == 0 {
		return "no groups"
	}
	return "[" + strings.Join(groups, " ") + "]"
}
