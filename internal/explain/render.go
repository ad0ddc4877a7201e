package explain

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/podsg/podsg/api/v1beta1"
)

// Render writes a report as text: the pod, the policies, the annotation and events, EC2, and
// the diagnosis last, where a reader who scrolled through the evidence arrives.
func Render(r *Report) string {
	var b strings.Builder
	renderPod(&b, r)
	renderPolicies(&b, r)
	renderAnnotation(&b, r)
	renderEvents(&b, r)
	renderEC2(&b, r)
	renderIdentity(&b, r)
	b.WriteString("\nDiagnosis\n")
	for _, f := range Diagnose(r) {
		mark := "-"
		if f.Problem {
			mark = "!"
		}
		fmt.Fprintf(&b, "  %s %s\n", mark, f.Text)
	}
	return b.String()
}

// field writes one aligned "  name  value" line.
func field(b *strings.Builder, name, format string, args ...any) {
	fmt.Fprintf(b, "  %-17s %s\n", name+":", fmt.Sprintf(format, args...))
}

func renderPod(b *strings.Builder, r *Report) {
	p := r.Pod
	fmt.Fprintf(b, "Pod %s/%s\n", p.Namespace, p.Name)
	switch {
	case p.NodeName != "":
		field(b, "node", "%s%s", p.NodeName, nodeDetail(r.Node))
	case p.Unscheduled != "":
		field(b, "node", "not scheduled (%s)", p.Unscheduled)
	default:
		field(b, "node", "not scheduled")
	}
	if p.ServiceAccountFound {
		field(b, "service account", "%s (labels: %s)", p.ServiceAccount, labelText(p.ServiceAccountLabels))
	} else {
		field(b, "service account", "%s (does not exist: no labels for a serviceAccountSelector to match)", p.ServiceAccount)
	}
	field(b, "phase", "%s", orNone(p.Phase, "unknown"))
	field(b, "labels", "%s", labelText(p.Labels))
	switch {
	case p.RequestsENI:
		field(b, "branch ENI", "requested: container %q requests %s (podsg's webhook adds it at creation)", p.RequestContainer, v1beta1.ResourcePodENI)
	case p.HostNetwork:
		field(b, "branch ENI", "not requested: host-network pods are skipped by the webhook")
	case p.Windows:
		field(b, "branch ENI", "not requested: Windows pods are skipped by the webhook")
	default:
		field(b, "branch ENI", "not requested: no container requests %s, so the pod gets an IP of one of its node's ENIs, which carry the primary ENI's groups", v1beta1.ResourcePodENI)
	}
	if p.AdmittedGroups != nil {
		field(b, "admitted groups", "%s (%s: resolved at admission, the groups the controller uses)", groupList(p.AdmittedGroups), v1beta1.AnnotationSecurityGroups)
	}
	renderWebhook(b, r)
}

func nodeDetail(n Node) string {
	switch {
	case n.Err != "":
		return " (" + n.Err + ")"
	case !n.Found:
		return ""
	}
	trunk := "no trunk"
	switch n.TrunkLabel {
	case "true":
		trunk = "trunk attached"
	case "false":
		trunk = "trunk requested, not attached"
	}
	return fmt.Sprintf(" (%s, %s allocatable: %s)", trunk, v1beta1.ResourcePodENI, orNone(n.Capacity, "none"))
}

func renderWebhook(b *strings.Builder, r *Report) {
	renderWebhookField(b, r.Webhook, r.Pod.Namespace, "not registered: no pod is matched against policies")
}

// renderWebhookField writes a webhook's registration and whether it sees pods of namespace ns.
func renderWebhookField(b *strings.Builder, w Webhook, ns, notRegistered string) {
	switch {
	case !w.Registered && w.Err != "":
		field(b, "webhook", "unknown (%s)", w.Err)
		return
	case !w.Registered:
		field(b, "webhook", "%s", notRegistered)
		return
	}
	sees := "sees pods of namespace " + ns
	switch {
	case w.Err != "":
		sees = "namespace not checked: " + w.Err
	case w.NamespaceExcluded:
		sees = "EXCLUDES namespace " + ns
	}
	sel := ""
	if w.NamespaceSelector != "" {
		sel = ", namespaceSelector " + w.NamespaceSelector
	}
	if w.ObjectSelector != "" {
		sel += ", objectSelector " + w.ObjectSelector
		if w.ObjectExcluded {
			sees += ", EXCLUDES this pod by its labels"
		}
	}
	field(b, "webhook", "%s%s: %s", w.Name, sel, sees)
}

func renderPolicies(b *strings.Builder, r *Report) {
	fmt.Fprintf(b, "\nSecurityGroupPolicies in %s\n", r.Pod.Namespace)
	if nothingToList(b, r.PoliciesErr, len(r.Policies)) {
		return
	}
	for _, p := range r.Policies {
		verdict := "does not select the pod"
		if p.Selected {
			verdict = "SELECTS the pod"
		}
		fmt.Fprintf(b, "  %s: %s; groups %s\n", p.Name, verdict, groupList(p.Groups))
		renderSelectors(b, r.Pod, p)
		for _, pr := range p.Problems {
			fmt.Fprintf(b, "    status: %s\n", pr)
		}
	}
	if len(r.Union) == 0 {
		b.WriteString("  groups the pod should get: none, no policy selects it\n")
	} else {
		fmt.Fprintf(b, "  groups the pod should get: %s, the union of %s\n", groupList(r.Union), strings.Join(r.UnionPolicies, ", "))
	}
	fmt.Fprintf(b, "  (policies are combined in name order, each group once, in the order the policy lists it; nothing is\n"+
		"  truncated: EC2 allows %d groups per ENI by default, %d at most, and a longer union fails the branch ENI)\n",
		DefaultGroupsPerENI, MaxGroupsPerENI)
}

func renderSelectors(b *strings.Builder, pod Pod, p Policy) {
	if !p.PodSelector.Set && !p.ServiceAccountSelector.Set {
		b.WriteString("    neither selector is set: the policy selects nothing\n")
		return
	}
	sa := fmt.Sprintf("ServiceAccount %s's labels (%s)", pod.ServiceAccount, labelText(pod.ServiceAccountLabels))
	if !pod.ServiceAccountFound {
		sa = fmt.Sprintf("ServiceAccount %s (does not exist)", pod.ServiceAccount)
	}
	renderSelector(b, "podSelector", p.PodSelector, fmt.Sprintf("the pod's labels (%s)", labelText(pod.Labels)))
	renderSelector(b, "serviceAccountSelector", p.ServiceAccountSelector, sa)
	if p.PodSelector.Set && p.ServiceAccountSelector.Set {
		b.WriteString("    both selectors are set: both must match\n")
	}
	if p.Err != "" {
		fmt.Fprintf(b, "    unusable: %s\n", p.Err)
	}
}

func renderSelector(b *strings.Builder, name string, s Selector, against string) {
	var text string
	switch {
	case !s.Set:
		text = "not set"
	case s.Err != "":
		text = fmt.Sprintf("%s: unusable (%s), never matches", s.Text, s.Err)
	case s.Matches:
		text = fmt.Sprintf("%s: matches %s", s.Text, against)
	default:
		text = fmt.Sprintf("%s: does not match %s; unmet: %s", s.Text, against, strings.Join(s.Unmet, ", "))
	}
	fmt.Fprintf(b, "    %-23s %s\n", name, text)
}

func renderAnnotation(b *strings.Builder, r *Report) {
	a := r.Annotation
	fmt.Fprintf(b, "\nAnnotation %s\n", v1beta1.AnnotationPodENI)
	switch {
	case !a.Present:
		b.WriteString("  absent: no branch ENI allocated\n")
		return
	case a.Err != "" && len(a.ENIs) == 0:
		fmt.Fprintf(b, "  unusable: %s\n", a.Err)
		return
	}
	for _, e := range a.ENIs {
		fmt.Fprintf(b, "  %s  IP %s  VLAN %d  subnet %s  MAC %s", orNone(e.ENIID, "?"), orNone(e.PrivateIP, "?"), e.VLANID,
			orNone(e.SubnetCIDR, "?"), orNone(e.IfAddress, "?"))
		if e.AssociationID != "" {
			fmt.Fprintf(b, "  association %s", e.AssociationID)
		}
		b.WriteString("\n")
	}
	if a.Err != "" {
		fmt.Fprintf(b, "  invalid: %s\n", a.Err)
	}
}

func renderEvents(b *strings.Builder, r *Report) {
	b.WriteString("\nEvents (podsg-controller's, and warnings)\n")
	if nothingToList(b, r.EventsErr, len(r.Events)) {
		return
	}
	for _, e := range r.Events {
		age := "?"
		if !e.Time.IsZero() {
			age = duration.HumanDuration(r.Now.Sub(e.Time))
		}
		count := ""
		if e.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Count)
		}
		fmt.Fprintf(b, "  %-5s %-7s %s%s: %s\n", age, e.Type, e.Reason, count, e.Message)
	}
}

func renderEC2(b *strings.Builder, r *Report) {
	b.WriteString("\nEC2\n")
	e := r.EC2
	switch {
	case e == nil:
		b.WriteString("  not checked: pass --ec2 to ask AWS, or --ec2-endpoint URL for the local VPC\n")
		return
	case e.Err != "":
		fmt.Fprintf(b, "  unknown: %s\n", e.Err)
		return
	}
	t := e.Trunk
	switch {
	case t.Err != "":
		fmt.Fprintf(b, "  trunk: unknown (%s)\n", t.Err)
	case t.ID != "":
		fmt.Fprintf(b, "  trunk: %s on instance %s\n", t.ID, t.InstanceID)
	case t.InstanceID != "":
		fmt.Fprintf(b, "  trunk: none on instance %s\n", t.InstanceID)
	}
	if len(e.Branches) == 0 {
		b.WriteString("  branch ENIs: none for this pod\n")
	}
	for _, br := range e.Branches {
		renderBranch(b, r, br)
	}
}

func renderBranch(b *strings.Builder, r *Report, br Branch) {
	switch {
	case br.Err != "":
		fmt.Fprintf(b, "  branch %s: unknown (%s)\n", br.ID, br.Err)
		return
	case !br.Found:
		fmt.Fprintf(b, "  branch %s: does not exist\n", br.ID)
		return
	}
	n := br.ENI
	fmt.Fprintf(b, "  branch %s: type %s, status %s, IP %s, subnet %s\n", br.ID, orNone(n.Type, "interface"), orNone(n.Status, "?"),
		orNone(n.PrivateIP, "?"), orNone(n.SubnetID, "?"))
	groups := "as admitted"
	if !sameSet(n.SecurityGroups, r.Pod.AdmittedGroups) {
		groups = "DRIFT: admitted " + groupList(r.Pod.AdmittedGroups)
	}
	fmt.Fprintf(b, "    groups:      %s (%s)\n", groupList(n.SecurityGroups), groups)
	switch {
	case br.Association != nil:
		fmt.Fprintf(b, "    association: %s, VLAN %d on trunk %s\n", br.Association.ID, br.Association.VLAN, br.Association.TrunkID)
	case r.EC2.Trunk.ID != "":
		fmt.Fprintf(b, "    association: none on trunk %s\n", r.EC2.Trunk.ID)
	}
}

func labelText(m map[string]string) string {
	if len(m) == 0 {
		return "none"
	}
	return labels.Set(m).String()
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

// nothingToList writes "unknown: why" when a section's items could not be read, or "none" when
// there are none, and reports whether it did (the section then has nothing more to say).
func nothingToList(b *strings.Builder, readErr string, n int) bool {
	switch {
	case readErr != "":
		fmt.Fprintf(b, "  unknown: %s\n", readErr)
	case n == 0:
		b.WriteString("  none\n")
	default:
		return false
	}
	return true
}
