// Package policy decides which security groups a pod gets from the SecurityGroupPolicies of
// its namespace, and reports on each policy in its status.
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
		sel, err := metav1.LabelSelectorAsSelector(s.sel)
		if err != nil {
			return false, fmt.Errorf("parsing selector: %w", err)
		}
		if !sel.Matches(labels.Set(s.labels)) {
			return false, nil
		}
	}
	return true, nil
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
