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
