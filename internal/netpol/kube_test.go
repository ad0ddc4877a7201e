package netpol_test

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/internal/netpol"
)

// TestPodsFromLists: a pod carries its namespace's labels and its ServiceAccount's (the
// "default" one when the spec names none), never another namespace's ServiceAccount of the
// same name; finished pods are left out.
func TestPodsFromLists(t *testing.T) {
	ns := func(name, team string) corev1.Namespace {
		return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"team": team}}}
	}
	sa := func(namespace, name, role string) corev1.ServiceAccount {
		return corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: map[string]string{"role": role}}}
	}
	pod := func(namespace, name, sa string, phase corev1.PodPhase) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
			Spec: corev1.PodSpec{ServiceAccountName: sa}, Status: corev1.PodStatus{Phase: phase, PodIP: "10.0.0.1"}}
	}
	nss := &corev1.NamespaceList{Items: []corev1.Namespace{ns("a", "red"), ns("b", "blue")}}
	sas := &corev1.ServiceAccountList{Items: []corev1.ServiceAccount{sa("a", "my-sa", "db"), sa("a", "default", "none"), sa("b", "my-sa", "web")}}
	pods := &corev1.PodList{Items: []corev1.Pod{
		pod("a", "named", "my-sa", corev1.PodRunning),
		pod("a", "unnamed", "", corev1.PodPending),
		pod("b", "other-ns", "my-sa", corev1.PodRunning),
		pod("c", "unknown-ns", "ghost", corev1.PodRunning),
		pod("a", "done", "my-sa", corev1.PodSucceeded),
		pod("a", "failed", "my-sa", corev1.PodFailed),
	}}
	want := map[string]struct {
		sa           string
		nsTeam, role string
	}{
		"a/named":      {"my-sa", "red", "db"},
		"a/unnamed":    {"default", "red", "none"},
		"b/other-ns":   {"my-sa", "blue", "web"},
		"c/unknown-ns": {"ghost", "", ""},
	}
	got := netpol.PodsFromLists(pods, nss, sas)
	seen := map[string]bool{}
	for _, p := range got {
		key := p.Namespace + "/" + p.Name
		w, ok := want[key]
		if !ok {
			t.Errorf("pod %s: policies should not see it", key)
			continue
		}
		seen[key] = true
		if p.ServiceAccount != w.sa || p.NamespaceLabels["team"] != w.nsTeam || p.ServiceAccountLabels["role"] != w.role {
			t.Errorf("pod %s: service account %q, namespace team %q, service account role %q; want %+v",
				key, p.ServiceAccount, p.NamespaceLabels["team"], p.ServiceAccountLabels["role"], w)
		}
	}
	for key := range maps.Keys(want) {
		if !seen[key] {
			t.Errorf("pod %s missing", key)
		}
	}
}
