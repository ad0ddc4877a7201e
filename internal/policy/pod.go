package policy

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podsg/podsg/api/v1beta1"
)

// RequestBranchENI is the webhook's mark on a pod that policies select: a
// vpc.amazonaws.com/pod-eni request and limit of 1 on its first container, where AWS's webhook
// puts it, so that the scheduler places the pod only on a node with a free branch ENI. The pod
// must have a container.
func RequestBranchENI(pod *corev1.Pod) {
	c := &pod.Spec.Containers[0]
	one := resource.MustParse("1")
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	c.Resources.Requests[v1beta1.ResourcePodENI] = one
	c.Resources.Limits[v1beta1.ResourcePodENI] = one
}

// WantsBranchENI reports whether a pod asks for a branch ENI: the one rule the controller
// allocates by, the node agent wires by, and explain and reach report. See BranchENIContainer.
func WantsBranchENI(pod *corev1.Pod) bool {
	_, ok := BranchENIContainer(pod)
	return ok
}

// BranchENIContainer returns the container whose vpc.amazonaws.com/pod-eni request makes the
// pod ask for a branch ENI, regular containers first, then init containers; ok is false when
// none does.
//
// A pod asks for a branch ENI exactly when the scheduler charges it vpc.amazonaws.com/pod-eni
// against its node's capacity, since that is the slot its ENI will take: when any container,
// init containers (and sidecars) included, requests a non-zero quantity. (The scheduler's pod
// request is the larger of the containers' sum and each init container's own, non-zero exactly
// when one of them is.) A limit alone counts as the request: the apiserver defaults the request
// of an extended resource to its limit, and objects that did not go through it (tests, old
// caches) must not read otherwise. AWS's controller reads the regular containers' requests only
// and counts a request of 0; podsg's webhook marks the first container with 1, on which all of
// these agree.
func BranchENIContainer(pod *corev1.Pod) (name string, ok bool) {
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range cs {
			if q := podENIRequest(&cs[i]); !q.IsZero() {
				return cs[i].Name, true
			}
		}
	}
	return "", false
}

// podENIRequest is a container's vpc.amazonaws.com/pod-eni request, its limit when it has none.
func podENIRequest(c *corev1.Container) resource.Quantity {
	if q, ok := c.Resources.Requests[v1beta1.ResourcePodENI]; ok {
		return q
	}
	return c.Resources.Limits[v1beta1.ResourcePodENI]
}

// Terminal reports whether a pod has finished for good (phase Succeeded or Failed): its
// containers never run again, so it needs no branch ENI, owns none, and no policy counts it.
func Terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// IsWindows reports whether a pod targets Windows nodes, where branch ENIs are not supported:
// the webhook never marks such a pod.
func IsWindows(pod *corev1.Pod) bool {
	if pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows {
		return true
	}
	for _, k := range []string{corev1.LabelOSStable, "beta.kubernetes.io/os"} {
		if pod.Spec.NodeSelector[k] == string(corev1.Windows) {
			return true
		}
	}
	return false
}
