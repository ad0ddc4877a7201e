package explain

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podsg/podsg/api/v1beta1"
)

// TestPodFactsRequest: explain says a pod asks for a branch ENI exactly when the controller
// allocates one (policy.WantsBranchENI), naming the container that asks.
func TestPodFactsRequest(t *testing.T) {
	one := corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("1")}
	tests := map[string]struct {
		spec      corev1.PodSpec
		requests  bool
		container string
	}{
		"first container": {spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Resources: corev1.ResourceRequirements{Requests: one, Limits: one}}, {Name: "log"}}}, requests: true, container: "app"},
		"second container": {spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app"}, {Name: "log", Resources: corev1.ResourceRequirements{Requests: one, Limits: one}}}}, requests: true, container: "log"},
		"limit alone": {spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Resources: corev1.ResourceRequirements{Limits: one}}}}, requests: true, container: "app"},
		"none": {spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := podFacts(&corev1.Pod{Spec: tc.spec})
			if p.RequestsENI != tc.requests || p.RequestContainer != tc.container {
				t.Fatalf("RequestsENI = %v, RequestContainer = %q; want %v, %q", p.RequestsENI, p.RequestContainer, tc.requests, tc.container)
			}
		})
	}
}
