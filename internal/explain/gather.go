package explain

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/reach"
	"github.com/podsg/podsg/internal/webhook"
)

// EC2 is what explain asks EC2; only describes, so explain can never change anything. The
// security groups' rules are read as `podsg reach` reads them (reach.EC2).
type EC2 interface {
	reach.EC2
	DescribeInstance(ctx context.Context, id string) (cloud.Instance, error)
	DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error)
}

// maxEvents bounds the events shown: the latest ones say where allocation stands.
const maxEvents = 10

// Gather reads what decided the groups of the pod key, from Kubernetes through kube (a
// controller-runtime client reading the apiserver directly, so that field selectors work) and,
// when ec2 is not nil, from EC2. The pod and its ServiceAccount must be readable, since every
// verdict depends on them; anything else that cannot be read is recorded in the report, which
// says what it could not check.
func Gather(ctx context.Context, kube client.Reader, ec2 EC2, key types.NamespacedName) (*Report, error) {
	p := &corev1.Pod{}
	if err := kube.Get(ctx, key, p); err != nil {
		return nil, fmt.Errorf("getting pod %s: %w", key, err)
	}
	r := &Report{Now: time.Now(), Pod: podFacts(p)}
	sa, err := serviceAccount(ctx, kube, p.Namespace, r.Pod.ServiceAccount)
	if err != nil {
		return nil, err
	}
	if sa != nil {
		r.Pod.ServiceAccountFound, r.Pod.ServiceAccountLabels, r.Pod.ServiceAccountCreated = true, sa.Labels, sa.CreationTimestamp.Time
	}
	r.gatherPolicies(ctx, kube, p, sa)
	r.Identity = identityFacts(p, sa)
	r.Webhook, r.Identity.Webhook = gatherWebhooks(ctx, kube, p)
	r.Annotation = annotation(p)
	if p.Spec.NodeName != "" {
		r.Node = gatherNode(ctx, kube, p.Spec.NodeName)
	}
	r.Events, err = gatherEvents(ctx, kube, p)
	if err != nil {
		r.EventsErr = err.Error()
	}
	if ec2 != nil {
		r.EC2 = gatherEC2(ctx, ec2, r)
		r.Traffic = gatherTraffic(ctx, kube, ec2, r)
	}
	return r, nil
}

func podFacts(p *corev1.Pod) Pod {
	out := Pod{
		Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), Created: p.CreationTimestamp.Time,
		Phase: string(p.Status.Phase), Terminal: policy.Terminal(p), NodeName: p.Spec.NodeName, Labels: p.Labels,
		ServiceAccount: policy.ServiceAccountName(p), HostNetwork: p.Spec.HostNetwork, Windows: policy.IsWindows(p),
	}
	out.RequestContainer, out.RequestsENI = policy.BranchENIContainer(p)
	out.Probes = probes(p)
	if v, ok := p.Annotations[v1beta1.AnnotationSecurityGroups]; ok {
		out.AdmittedGroups = append([]string{}, policy.SplitGroups(v)...)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			out.Unscheduled = strings.TrimSpace(c.Reason + ": " + c.Message)
		}
	}
	return out
}

// serviceAccount returns nil when the ServiceAccount does not exist, as admission does.
func serviceAccount(ctx context.Context, kube client.Reader, ns, name string) (*corev1.ServiceAccount, error) {
	sa := &corev1.ServiceAccount{}
	err := kube.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, sa)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("getting ServiceAccount %s/%s: %w", ns, name, err)
	}
	return sa, nil
}

// gatherPolicies judges every policy of the namespace with the controller's own matching,
// and computes the union the way admission does.
func (r *Report) gatherPolicies(ctx context.Context, kube client.Reader, p *corev1.Pod, sa *corev1.ServiceAccount) {
	var list v1beta1.SecurityGroupPolicyList
	if err := kube.List(ctx, &list, client.InNamespace(p.Namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			r.PoliciesErr = "the SecurityGroupPolicy CRD is not installed"
			return
		}
		r.PoliciesErr = fmt.Sprintf("listing SecurityGroupPolicies: %v", err)
		return
	}
	var saLabels map[string]string
	if sa != nil {
		saLabels = sa.Labels
	}
	for i := range list.Items {
		r.Policies = append(r.Policies, policyFacts(&list.Items[i], p.Labels, saLabels))
	}
	slices.SortFunc(r.Policies, func(a, b Policy) int { return strings.Compare(a.Name, b.Name) })
	// The error names unusable policies, which each Policy already reports.
	m, _ := policy.PodGroups(p, sa, list.Items)
	r.Union, r.UnionPolicies = m.Groups, m.Policies
}

func policyFacts(sgp *v1beta1.SecurityGroupPolicy, podLabels, saLabels map[string]string) Policy {
	v := policy.Explain(sgp, podLabels, saLabels)
	out := Policy{
		Name: sgp.Name, Created: sgp.CreationTimestamp.Time, Groups: sgp.Spec.SecurityGroups.Groups, Selected: v.Selected,
		PodSelector:            selectorFacts(sgp.Spec.PodSelector, v.PodSelector),
		ServiceAccountSelector: selectorFacts(sgp.Spec.ServiceAccountSelector, v.ServiceAccountSelector),
	}
	if v.Err != nil {
		out.Err = v.Err.Error()
	}
	for _, c := range sgp.Status.Conditions {
		if c.Status == metav1.ConditionFalse && c.Type != v1beta1.ConditionReady { // Ready only points at the others
			out.Problems = append(out.Problems, fmt.Sprintf("%s=False (%s): %s", c.Type, c.Reason, c.Message))
		}
	}
	return out
}

func selectorFacts(s *metav1.LabelSelector, v policy.SelectorVerdict) Selector {
	out := Selector{Set: v.Set, Matches: v.Matches, Unmet: v.Unmet, Text: formatSelector(s)}
	if v.Err != nil {
		out.Err = v.Err.Error()
	}
	return out
}

// formatSelector is kubectl's notation, except that the empty selector, which matches
// everything, reads "{}" rather than kubectl's "<none>".
func formatSelector(s *metav1.LabelSelector) string {
	if s == nil {
		return ""
	}
	if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		return "{}"
	}
	return metav1.FormatLabelSelector(s)
}

// awsIdentityWebhooks are the names AWS's pod identity webhook is registered under: by its
// own deployment files, and on EKS (served by the control plane).
var awsIdentityWebhooks = []string{"pod-identity-webhook.amazonaws.com", "iam-for-pods.amazonaws.com"}

// gatherWebhooks finds the mutating webhooks that decide a pod's groups (served on podsg's pod
// mutation path, which AWS's controller uses too) and its IAM role (podsg's identity path, or
// AWS's webhook by name), and whether they would see this pod at all.
func gatherWebhooks(ctx context.Context, kube client.Reader, p *corev1.Pod) (groups, identity Webhook) {
	var list admissionregistrationv1.MutatingWebhookConfigurationList
	if err := kube.List(ctx, &list); err != nil {
		w := Webhook{Err: fmt.Sprintf("listing mutating webhook configurations: %v", err)}
		return w, w
	}
	ns := &corev1.Namespace{}
	nsErr := kube.Get(ctx, client.ObjectKey{Name: p.Namespace}, ns)
	slices.SortFunc(list.Items, func(a, b admissionregistrationv1.MutatingWebhookConfiguration) int {
		return strings.Compare(a.Name, b.Name)
	})
	groups = findWebhook(list.Items, p, ns, nsErr, func(wh admissionregistrationv1.MutatingWebhook) bool {
		return servesPath(wh.ClientConfig, webhook.MutatePath)
	})
	identity = findWebhook(list.Items, p, ns, nsErr, func(wh admissionregistrationv1.MutatingWebhook) bool {
		return servesPath(wh.ClientConfig, webhook.IdentityPath) || slices.Contains(awsIdentityWebhooks, wh.Name)
	})
	return groups, identity
}

// findWebhook describes the first webhook that matches, as it would treat pod p.
func findWebhook(cfgs []admissionregistrationv1.MutatingWebhookConfiguration, p *corev1.Pod, ns *corev1.Namespace, nsErr error,
	match func(admissionregistrationv1.MutatingWebhook) bool) Webhook {
	for _, cfg := range cfgs {
		for _, wh := range cfg.Webhooks {
			if !match(wh) {
				continue
			}
			out := Webhook{Registered: true, Name: cfg.Name + "/" + wh.Name, Created: cfg.CreationTimestamp.Time,
				NamespaceSelector: webhookSelector(wh.NamespaceSelector), ObjectSelector: webhookSelector(wh.ObjectSelector)}
			if nsErr != nil {
				out.Err = fmt.Sprintf("getting namespace %s: %v", p.Namespace, nsErr)
			} else {
				out.NamespaceExcluded = !selects(wh.NamespaceSelector, ns.Labels)
			}
			out.ObjectExcluded = !selects(wh.ObjectSelector, p.Labels)
			return out
		}
	}
	return Webhook{}
}

// servesPath compares cleaned paths: a URL built by joining a host and a path may carry a
// doubled slash, which the webhook server serves all the same.
func servesPath(c admissionregistrationv1.WebhookClientConfig, want string) bool {
	if c.Service != nil {
		return c.Service.Path != nil && path.Clean(*c.Service.Path) == want
	}
	if c.URL != nil {
		u, err := url.Parse(*c.URL)
		return err == nil && path.Clean(u.Path) == want
	}
	return false
}

// webhookSelector is "" for a selector that lets every object through: the apiserver
// defaults an absent one to {}, which says nothing worth showing.
func webhookSelector(s *metav1.LabelSelector) string {
	if f := formatSelector(s); f != "{}" {
		return f
	}
	return ""
}

// selects evaluates a webhook's namespace or object selector as the apiserver does: absent
// selects everything, and so does {}.
func selects(s *metav1.LabelSelector, set map[string]string) bool {
	if s == nil {
		return true
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && sel.Matches(labels.Set(set))
}

func annotation(p *corev1.Pod) Annotation {
	raw, ok := p.Annotations[v1beta1.AnnotationPodENI]
	if !ok {
		return Annotation{}
	}
	a := Annotation{Present: true, Raw: raw}
	enis, err := v1beta1.ParsePodENIs(raw)
	if err != nil {
		a.Err = err.Error()
		return a
	}
	a.ENIs = enis
	var errs []error
	for _, e := range enis {
		errs = append(errs, e.Validate())
	}
	if len(enis) == 0 {
		errs = append(errs, errors.New("the list is empty"))
	}
	if err := errors.Join(errs...); err != nil {
		a.Err = err.Error()
	}
	return a
}

func gatherNode(ctx context.Context, kube client.Reader, name string) Node {
	n := &corev1.Node{}
	out := Node{Name: name}
	if err := kube.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		out.Err = fmt.Sprintf("getting node %s: %v", name, err)
		return out
	}
	out.Found, out.ProviderID, out.TrunkLabel = true, n.Spec.ProviderID, n.Labels[v1beta1.LabelHasTrunkAttached]
	if q, ok := n.Status.Allocatable[v1beta1.ResourcePodENI]; ok {
		out.Capacity = q.String()
	}
	return out
}

// gatherEvents keeps podsg-controller's events and everyone's warnings (a scheduler that
// finds no pod-eni capacity, a CNI that cannot wire the branch), the latest maxEvents.
func gatherEvents(ctx context.Context, kube client.Reader, p *corev1.Pod) ([]Event, error) {
	var list corev1.EventList
	if err := kube.List(ctx, &list, client.InNamespace(p.Namespace), client.MatchingFields{"involvedObject.uid": string(p.UID)}); err != nil {
		return nil, fmt.Errorf("listing events of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	var out []Event
	for i := range list.Items {
		e := &list.Items[i]
		from := e.ReportingController
		if from == "" {
			from = e.Source.Component
		}
		if from != v1beta1.ReportingController && !controllerReason(e.Reason) && e.Type != corev1.EventTypeWarning {
			continue
		}
		out = append(out, Event{Time: eventTime(e), Type: e.Type, Reason: e.Reason, Message: e.Message, From: from, Count: eventCount(e)})
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	if len(out) > maxEvents {
		out = out[len(out)-maxEvents:]
	}
	return out, nil
}

func controllerReason(reason string) bool {
	switch reason {
	case v1beta1.ReasonSecurityGroupRequested, v1beta1.ReasonResourceAllocated, v1beta1.ReasonAllocationFailed,
		v1beta1.ReasonAnnotationFailed, v1beta1.ReasonNoSecurityGroups:
		return true
	}
	return false
}

// eventTime is when an event last happened, in whichever field the API that wrote it used.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

func eventCount(e *corev1.Event) int32 {
	if e.Series != nil {
		return e.Series.Count
	}
	return e.Count
}

// gatherEC2 describes the pod's branch ENIs (those its annotation names and those tagged with
// its UID, which exist before the annotation is written) and their association with the
// node's trunk.
func gatherEC2(ctx context.Context, ec2 EC2, r *Report) *EC2Report {
	out := &EC2Report{}
	tagged, err := ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagPodUID: r.Pod.UID}})
	if err != nil {
		out.Err = fmt.Sprintf("describing the pod's branch ENIs: %v", err)
		return out
	}
	for _, e := range r.Annotation.ENIs {
		if e.ENIID == "" || slices.ContainsFunc(out.Branches, func(b Branch) bool { return b.ID == e.ENIID }) {
			continue
		}
		out.Branches = append(out.Branches, describeBranch(ctx, ec2, e.ENIID, tagged))
	}
	for _, e := range tagged {
		if !slices.ContainsFunc(out.Branches, func(b Branch) bool { return b.ID == e.ID }) {
			out.Branches = append(out.Branches, Branch{ID: e.ID, Found: true, ENI: e})
		}
	}
	var assocs []cloud.TrunkAssociation
	if r.Node.Found {
		out.Trunk, assocs = nodeTrunk(ctx, ec2, r.Node.ProviderID)
	}
	for i := range out.Branches {
		b := &out.Branches[i]
		b.Annotated = r.Annotation.names(b.ID)
		if j := slices.IndexFunc(assocs, func(a cloud.TrunkAssociation) bool { return a.BranchID == b.ID }); j >= 0 {
			b.Association = &assocs[j]
		}
	}
	return out
}

func (a Annotation) names(id string) bool {
	return slices.ContainsFunc(a.ENIs, func(e v1beta1.PodENI) bool { return e.ENIID == id })
}

func describeBranch(ctx context.Context, ec2 EC2, id string, known []cloud.NetworkInterface) Branch {
	if i := slices.IndexFunc(known, func(e cloud.NetworkInterface) bool { return e.ID == id }); i >= 0 {
		return Branch{ID: id, Found: true, ENI: known[i]}
	}
	enis, err := ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{id}})
	switch {
	case errors.Is(err, cloud.ErrNotFound) || (err == nil && len(enis) == 0):
		return Branch{ID: id}
	case err != nil:
		return Branch{ID: id, Err: fmt.Sprintf("describing %s: %v", id, err)}
	}
	return Branch{ID: id, Found: true, ENI: enis[0]}
}

// nodeTrunk finds the trunk the way podsg-controller does: the trunk-type ENI attached to the
// node's instance.
func nodeTrunk(ctx context.Context, ec2 EC2, providerID string) (Trunk, []cloud.TrunkAssociation) {
	id, err := cloud.InstanceID(providerID)
	if err != nil {
		return Trunk{Err: err.Error()}, nil
	}
	t := Trunk{InstanceID: id}
	inst, err := ec2.DescribeInstance(ctx, id)
	if err != nil {
		t.Err = fmt.Sprintf("describing instance %s: %v", id, err)
		return t, nil
	}
	for _, e := range inst.NetworkInterfaces {
		if e.Type == cloud.InterfaceTypeTrunk {
			t.ID = e.ID
		}
	}
	if t.ID == "" {
		return t, nil
	}
	assocs, err := ec2.DescribeTrunkInterfaceAssociations(ctx, t.ID)
	if err != nil {
		t.Err = fmt.Sprintf("describing the associations of trunk %s: %v", t.ID, err)
	}
	return t, assocs
}
