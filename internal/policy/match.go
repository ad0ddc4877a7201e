package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/podsg/podsg/api/v1beta1"
)

// Match is the outcome of evaluating policies for one pod.
type Match struct {
	// Groups is the union of the matching policies' groups, in policy-name order, each once.
	Groups []string
	// Policies names the matching policies, sorted.
	Policies []string
}

// Evaluate returns the groups that policies give to a pod whose labels are podLabels and
// whose ServiceAccount carries saLabels (nil when it has none or does not exist).
//
// A null selector is not considered, {} matches everything, and when both selectors are set
// both must match. Policies are taken in name order so that the result does not depend on
// the order a cache returns them in. A policy with an unparsable selector never matches; the
// returned error names it, so callers can report it without failing the pod.
func Evaluate(podLabels, saLabels map[string]string, policies []v1beta1.SecurityGroupPolicy) (Match, error) {
	sorted := slices.Clone(policies)
	slices.SortFunc(sorted, func(a, b v1beta1.SecurityGroupPolicy) int { return strings.Compare(a.Name, b.Name) })
	var m Match
	var errs []error
	for i := range sorted {
		p := &sorted[i]
		ok, err := Selects(p, podLabels, saLabels)
		if err != nil {
			errs = append(errs, fmt.Errorf("evaluating policy %s: %w", p.Name, err))
			continue
		}
		if !ok {
			continue
		}
		m.Policies = append(m.Policies, p.Name)
		for _, g := range p.Spec.SecurityGroups.Groups {
			if !slices.Contains(m.Groups, g) {
				m.Groups = append(m.Groups, g)
			}
		}
	}
	return m, errors.Join(errs...)
}

// Selects reports whether one policy selects a pod. A policy with neither selector selects
// nothing (the CRD rejects it, but old objects may predate that rule).
func Selects(p *v1beta1.SecurityGroupPolicy, podLabels, saLabels map[string]string) (bool, error) {
	if p.Spec.PodSelector == nil && p.Spec.ServiceAccountSelector == nil {
		return false, nil
	}
	for _, s := range []struct {
		sel    *metav1.LabelSelector
		labels map[string]string
	}{{p.Spec.PodSelector, podLabels}, {p.Spec.ServiceAccountSelector, saLabels}} {
		if s.sel == nil {
			continue
		}
		j := judge(s.sel, s.labels)
		if j.Err != nil {
			return false, j.Err
		}
		if !j.Matches {
			return false, nil
		}
	}
	return true, nil
}

// SelectorVerdict is how one selector of a policy judged a set of labels.
type SelectorVerdict struct {
	// Set is false for a null selector, which Selects does not consider.
	Set bool
	// Matches: the selector is set, parses, and the labels meet all its requirements.
	Matches bool
	// Unmet lists the requirements the labels do not meet, in the selector's notation
	// (e.g. "role=backend", "tier in (db,cache)").
	Unmet []string
	// Err is set when the selector cannot be parsed; such a selector never matches.
	Err error
}

// Verdict is Selects' decision with each selector judged on its own, for telling a user why
// a policy does or does not select a pod.
type Verdict struct {
	// Selected is exactly what Selects returns.
	Selected bool
	// Err is exactly what Selects returns.
	Err                                 error
	PodSelector, ServiceAccountSelector SelectorVerdict
}

// Explain returns Selects' decision together with each selector's own verdict. Selects stays
// the one place that decides; the per-selector verdicts come from the same evaluation.
func Explain(p *v1beta1.SecurityGroupPolicy, podLabels, saLabels map[string]string) Verdict {
	v := Verdict{
		PodSelector:            judge(p.Spec.PodSelector, podLabels),
		ServiceAccountSelector: judge(p.Spec.ServiceAccountSelector, saLabels),
	}
	v.Selected, v.Err = Selects(p, podLabels, saLabels)
	return v
}

func judge(s *metav1.LabelSelector, set map[string]string) SelectorVerdict {
	if s == nil {
		return SelectorVerdict{}
	}
	v := SelectorVerdict{Set: true}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		v.Err = fmt.Errorf("parsing selector: %w", err)
		return v
	}
	v.Matches = sel.Matches(labels.Set(set))
	if reqs, ok := sel.Requirements(); ok {
		for _, r := range reqs {
			if !r.Matches(labels.Set(set)) {
				v.Unmet = append(v.Unmet, r.String())
			}
		}
	}
	return v
}

// PodGroups evaluates policies for a pod and its ServiceAccount (sa may be nil).
func PodGroups(pod *corev1.Pod, sa *corev1.ServiceAccount, policies []v1beta1.SecurityGroupPolicy) (Match, error) {
	var saLabels map[string]string
	if sa != nil {
		saLabels = sa.Labels
	}
	return Evaluate(pod.Labels, saLabels, policies)
}

// ServiceAccountName is the ServiceAccount a pod runs as; the apiserver defaults it, but the
// mutating webhook may see the pod before that default is applied.
func ServiceAccountName(pod *corev1.Pod) string {
	if pod.Spec.ServiceAccountName != "" {
		return pod.Spec.ServiceAccountName
	}
	return "default"
}

// JoinGroups and SplitGroups encode the podsg.io/security-groups annotation.
func JoinGroups(groups []string) string { return strings.Join(groups, ",") }

// SplitGroups decodes the podsg.io/security-groups annotation; empty items are dropped.
func SplitGroups(s string) []string {
	var out []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.TrimSpace(g); g != "" {
			out = append(out, g)
		}
	}
	return out
}
