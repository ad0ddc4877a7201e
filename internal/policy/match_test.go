package policy

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/api/v1beta1"
)

func sgp(name string, pod, sa *metav1.LabelSelector, groups ...string) v1beta1.SecurityGroupPolicy {
	return v1beta1.SecurityGroupPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: pod, ServiceAccountSelector: sa,
			SecurityGroups: v1beta1.GroupIDs{Groups: groups}},
	}
}

func sel(kv ...string) *metav1.LabelSelector {
	s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func TestEvaluate(t *testing.T) {
	backend := map[string]string{"role": "backend"}
	web := map[string]string{"app": "web"}
	badSel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Bogus"}}}
	tests := map[string]struct {
		pod, sa  map[string]string
		policies []v1beta1.SecurityGroupPolicy
		want     []string
		wantErr  bool
	}{
		"sa selector matches":       {web, backend, []v1beta1.SecurityGroupPolicy{sgp("p", nil, sel("role", "backend"), "sg-1", "sg-2")}, []string{"sg-1", "sg-2"}, false},
		"sa selector, no sa":        {web, nil, []v1beta1.SecurityGroupPolicy{sgp("p", nil, sel("role", "backend"), "sg-1")}, nil, false},
		"empty sa selector, no sa":  {web, nil, []v1beta1.SecurityGroupPolicy{sgp("p", nil, sel(), "sg-1")}, []string{"sg-1"}, false},
		"empty pod selector":        {nil, nil, []v1beta1.SecurityGroupPolicy{sgp("p", sel(), nil, "sg-1")}, []string{"sg-1"}, false},
		"both null never matches":   {web, backend, []v1beta1.SecurityGroupPolicy{sgp("p", nil, nil, "sg-1")}, nil, false},
		"both set is AND, one miss": {web, backend, []v1beta1.SecurityGroupPolicy{sgp("p", sel("app", "db"), sel("role", "backend"), "sg-1")}, nil, false},
		"both set is AND, both hit": {web, backend, []v1beta1.SecurityGroupPolicy{sgp("p", sel("app", "web"), sel("role", "backend"), "sg-1")}, []string{"sg-1"}, false},
		"union in name order, deduplicated": {web, backend, []v1beta1.SecurityGroupPolicy{
			sgp("b", sel("app", "web"), nil, "sg-3", "sg-1"),
			sgp("a", nil, sel("role", "backend"), "sg-1", "sg-2"),
			sgp("c", sel("app", "other"), nil, "sg-9"),
		}, []string{"sg-1", "sg-2", "sg-3"}, false},
		"bad selector is skipped and reported": {web, backend, []v1beta1.SecurityGroupPolicy{
			sgp("a", badSel, nil, "sg-9"), sgp("b", sel(), nil, "sg-1"),
		}, []string{"sg-1"}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := Evaluate(tc.pod, tc.sa, tc.policies)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if !slices.Equal(m.Groups, tc.want) {
				t.Fatalf("groups = %v, want %v", m.Groups, tc.want)
			}
		})
	}
}

func TestSplitJoinGroups(t *testing.T) {
	for in, want := range map[string][]string{"": nil, "sg-1": {"sg-1"}, "sg-1, sg-2,,": {"sg-1", "sg-2"}} {
		if got := SplitGroups(in); !slices.Equal(got, want) {
			t.Errorf("SplitGroups(%q) = %v, want %v", in, got, want)
		}
	}
	if got := JoinGroups([]string{"sg-1", "sg-2"}); got != "sg-1,sg-2" {
		t.Errorf("JoinGroups = %q", got)
	}
}

// TestExplain: the per-selector verdicts say which requirement failed, and the decision is
// Selects' own, errors included.
func TestExplain(t *testing.T) {
	backend := map[string]string{"role": "backend"}
	web := map[string]string{"app": "web", "tier": "front"}
	in := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"db"}}}}
	badSel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Bogus"}}}
	tests := map[string]struct {
		pod, sa          map[string]string
		policy           v1beta1.SecurityGroupPolicy
		selected         bool
		podSel, saSel    SelectorVerdict
		wantErr          bool
		podErr, saErrSet bool
	}{
		"sa selector matches": {web, backend, sgp("p", nil, sel("role", "backend"), "sg-1"), true,
			SelectorVerdict{}, SelectorVerdict{Set: true, Matches: true}, false, false, false},
		"sa selector, no sa": {web, nil, sgp("p", nil, sel("role", "backend"), "sg-1"), false,
			SelectorVerdict{}, SelectorVerdict{Set: true, Unmet: []string{"role=backend"}}, false, false, false},
		"empty pod selector": {nil, nil, sgp("p", sel(), nil, "sg-1"), true,
			SelectorVerdict{Set: true, Matches: true}, SelectorVerdict{}, false, false, false},
		"both null": {web, backend, sgp("p", nil, nil, "sg-1"), false,
			SelectorVerdict{}, SelectorVerdict{}, false, false, false},
		"both set, pod misses two requirements": {web, backend, sgp("p", sel("app", "db", "tier", "front", "zone", "a"), sel("role", "backend"), "sg-1"), false,
			SelectorVerdict{Set: true, Unmet: []string{"app=db", "zone=a"}}, SelectorVerdict{Set: true, Matches: true}, false, false, false},
		"set-based requirement": {web, nil, sgp("p", in, nil, "sg-1"), false,
			SelectorVerdict{Set: true, Unmet: []string{"tier in (db)"}}, SelectorVerdict{}, false, false, false},
		"bad pod selector is Selects' error": {web, backend, sgp("p", badSel, sel("role", "backend"), "sg-1"), false,
			SelectorVerdict{Set: true}, SelectorVerdict{Set: true, Matches: true}, true, true, false},
		// Selects stops at the first selector that does not match, so the broken one after it
		// is no error of the decision; its own verdict still says it is broken.
		"bad sa selector after a miss": {web, backend, sgp("p", sel("app", "db"), badSel, "sg-1"), false,
			SelectorVerdict{Set: true, Unmet: []string{"app=db"}}, SelectorVerdict{Set: true}, false, false, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			v := Explain(&tc.policy, tc.pod, tc.sa)
			ok, err := Selects(&tc.policy, tc.pod, tc.sa)
			if v.Selected != ok || (v.Err == nil) != (err == nil) {
				t.Fatalf("Explain = %v, %v; Selects = %v, %v", v.Selected, v.Err, ok, err)
			}
			if v.Selected != tc.selected || (v.Err != nil) != tc.wantErr {
				t.Fatalf("selected = %v, err = %v; want %v, error %v", v.Selected, v.Err, tc.selected, tc.wantErr)
			}
			for _, c := range []struct {
				what      string
				got, want SelectorVerdict
				wantErr   bool
			}{{"podSelector", v.PodSelector, tc.podSel, tc.podErr}, {"serviceAccountSelector", v.ServiceAccountSelector, tc.saSel, tc.saErrSet}} {
				if c.got.Set != c.want.Set || c.got.Matches != c.want.Matches || !slices.Equal(c.got.Unmet, c.want.Unmet) || (c.got.Err != nil) != c.wantErr {
					t.Errorf("%s = %+v, want %+v (error %v)", c.what, c.got, c.want, c.wantErr)
				}
			}
		})
	}
}
