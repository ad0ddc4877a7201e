package controllertest

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/policy"
)

// SimulatedNode creates a Node as a kubelet of an EC2 instance would have it, without a
// kubelet: the provider id, Ready, resources reported, no not-ready taint, and the trunk label
// (false: asking for a trunk; true: a node podsg-controller already gave one, as after a
// restart). podENI > 0 is the vpc.amazonaws.com/pod-eni capacity a running podsg-controller
// advertised on it. Scale benchmarks create thousands of them.
func SimulatedNode(ctx context.Context, c client.Client, name, zone, instanceID string, hasTrunk bool, podENI int) (*corev1.Node, error) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		v1beta1.LabelHasTrunkAttached: fmt.Sprint(hasTrunk), corev1.LabelHostname: name}},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", zone, instanceID)}}
	if err := c.Create(ctx, n); err != nil {
		return nil, fmt.Errorf("creating node %s: %w", name, err)
	}
	n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("250")}
	if podENI > 0 {
		n.Status.Capacity[v1beta1.ResourcePodENI] = *resource.NewQuantity(int64(podENI), resource.DecimalSI)
	}
	n.Status.Allocatable = n.Status.Capacity.DeepCopy()
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
	if err := c.Status().Update(ctx, n); err != nil {
		return nil, fmt.Errorf("reporting node %s's status: %w", name, err)
	}
	return n, nil
}

// BranchPod is a pod bound to nodeName as admission leaves a pod a policy selects (the
// groups annotation, the pod-eni request); with eni set, also as podsg-controller leaves it
// once it has its branch (the pod-eni annotation). Creating one with eni set needs an
// apiserver without podsg's validating webhook, which lets only podsg-controller write it.
func BranchPod(ns, name, nodeName string, groups []string, eni *v1beta1.PodENI) (*corev1.Pod, error) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		Annotations: map[string]string{v1beta1.AnnotationSecurityGroups: policy.JoinGroups(groups)}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "app", Image: "pause"}}}}
	policy.RequestBranchENI(p)
	if eni != nil {
		v, err := v1beta1.MarshalPodENIs([]v1beta1.PodENI{*eni})
		if err != nil {
			return nil, err
		}
		p.Annotations[v1beta1.AnnotationPodENI] = v
	}
	return p, nil
}
