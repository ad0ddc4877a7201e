package policy

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podsg/podsg/api/v1beta1"
)

// podENI returns a container named name with the given pod-eni request and limit ("" for none).
func podENI(name, request, limit string) corev1.Container {
	c := corev1.Container{Name: name}
	if request != "" {
		c.Resources.Requests = corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse(request)}
	}
	if limit != "" {
		c.Resources.Limits = corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse(limit)}
	}
	return c
}

// TestBranchENIContainer pins "does this pod want a branch ENI": what the scheduler charges as
// vpc.amazonaws.com/pod-eni, in any container.
func TestBranchENIContainer(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	sidecar := podENI("proxy", "1", "1")
	sidecar.RestartPolicy = &always
	cpuOnly := corev1.Container{Name: "app", Resources: corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}}
	tests := map[string]struct {
		containers, init []corev1.Container
		want             string // "" for no branch ENI
	}{
		"no containers":                  {},
		"no pod-eni":                     {containers: []corev1.Container{cpuOnly}},
		"the webhook's mark":             {containers: []corev1.Container{podENI("app", "1", "1"), {Name: "log"}}, want: "app"},
		"a later container":              {containers: []corev1.Container{{Name: "app"}, podENI("log", "1", "1")}, want: "log"},
		"a limit alone is the request":   {containers: []corev1.Container{podENI("app", "", "1")}, want: "app"},
		"a request alone":                {containers: []corev1.Container{podENI("app", "1", "")}, want: "app"},
		"a zero request is none":         {containers: []corev1.Container{podENI("app", "0", "0")}},
		"a zero limit alone is none":     {containers: []corev1.Container{podENI("app", "", "0")}},
		"more than one":                  {containers: []corev1.Container{podENI("app", "2", "2")}, want: "app"},
		"an init container":              {containers: []corev1.Container{{Name: "app"}}, init: []corev1.Container{podENI("setup", "1", "1")}, want: "setup"},
		"a sidecar":                      {containers: []corev1.Container{{Name: "app"}}, init: []corev1.Container{sidecar}, want: "proxy"},
		"regular containers before init": {containers: []corev1.Container{podENI("app", "1", "1")}, init: []corev1.Container{podENI("setup", "1", "1")}, want: "app"},
		"zero everywhere but one init":   {containers: []corev1.Container{podENI("app", "0", "")}, init: []corev1.Container{{Name: "a"}, podENI("b", "", "1")}, want: "b"},
		"another extended resource only": {containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"vpc.amazonaws.com/pod-ips": resource.MustParse("1")}}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: tc.containers, InitContainers: tc.init}}
			got, ok := BranchENIContainer(pod)
			if got != tc.want || ok != (tc.want != "") || WantsBranchENI(pod) != ok {
				t.Fatalf("BranchENIContainer = %q, %v; WantsBranchENI = %v; want %q", got, ok, WantsBranchENI(pod), tc.want)
			}
		})
	}
}

// TestRequestBranchENI: the webhook's mark is what WantsBranchENI reads, whatever the first
// container asked before.
func TestRequestBranchENI(t *testing.T) {
	for name, first := range map[string]corev1.Container{
		"no resources":  {Name: "app"},
		"zero request":  podENI("app", "0", "0"),
		"other request": {Name: "app", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}},
	} {
		t.Run(name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{first, {Name: "log"}}}}
			RequestBranchENI(pod)
			if got, ok := BranchENIContainer(pod); !ok || got != "app" {
				t.Fatalf("after the mark: BranchENIContainer = %q, %v; want app", got, ok)
			}
			r := pod.Spec.Containers[0].Resources
			if q := r.Requests[v1beta1.ResourcePodENI]; q.Value() != 1 {
				t.Errorf("request = %s, want 1", q.String())
			}
			if q := r.Limits[v1beta1.ResourcePodENI]; q.Value() != 1 {
				t.Errorf("limit = %s, want 1", q.String())
			}
			if len(pod.Spec.Containers[1].Resources.Requests) != 0 {
				t.Errorf("the second container was marked: %v", pod.Spec.Containers[1].Resources)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	for phase, want := range map[corev1.PodPhase]bool{
		corev1.PodSucceeded: true, corev1.PodFailed: true,
		corev1.PodPending: false, corev1.PodRunning: false, corev1.PodUnknown: false, "": false,
	} {
		if got := Terminal(&corev1.Pod{Status: corev1.PodStatus{Phase: phase}}); got != want {
			t.Errorf("Terminal(phase %q) = %v, want %v", phase, got, want)
		}
	}
}

func TestIsWindows(t *testing.T) {
	tests := map[string]struct {
		spec corev1.PodSpec
		want bool
	}{
		"no OS":                      {},
		"spec.os windows":            {spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Windows}}, want: true},
		"spec.os linux":              {spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Linux}}},
		"node selector windows":      {spec: corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelOSStable: "windows"}}, want: true},
		"beta node selector windows": {spec: corev1.PodSpec{NodeSelector: map[string]string{"beta.kubernetes.io/os": "windows"}}, want: true},
		"node selector linux":        {spec: corev1.PodSpec{NodeSelector: map[string]string{corev1.LabelOSStable: "linux"}}},
	}
	for name, tc := range tests {
		if got := IsWindows(&corev1.Pod{Spec: tc.spec}); got != tc.want {
			t.Errorf("%s: IsWindows = %v, want %v", name, got, tc.want)
		}
	}
}
