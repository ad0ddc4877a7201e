package trunk

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/policy"
)

// PodNodeIndex indexes pods by spec.nodeName.
const PodNodeIndex = "spec.nodeName"

// IndexPods registers PodNodeIndex; call once per manager before registering the controllers.
func IndexPods(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &corev1.Pod{}, PodNodeIndex, PodNode)
}

// PodNode is PodNodeIndex's index function.
func PodNode(o client.Object) []string { return []string{o.(*corev1.Pod).Spec.NodeName} }

// The pod-eni annotation, not the ENI's tags, says which pod a branch is: a branch is reused
// by pod after pod without an EC2 call, so its tags keep naming the pod it was created for.

// annotatedOn returns the branch ENIs the live pods of a node are annotated with, by ENI id.
func annotatedOn(ctx context.Context, kube client.Reader, nodeName string) (map[string]*corev1.Pod, error) {
	var pods corev1.PodList
	if err := kube.List(ctx, &pods, client.MatchingFields{PodNodeIndex: nodeName}); err != nil {
		return nil, fmt.Errorf("listing the pods of node %s: %w", nodeName, err)
	}
	return annotated(pods.Items), nil
}

// AnnotatedENIs returns the branch ENIs live pods are annotated with, in the whole cluster.
func AnnotatedENIs(ctx context.Context, kube client.Reader) (map[string]bool, error) {
	var pods corev1.PodList
	// Read only, and only ids leave: the cache's own pods, not a copy of every pod.
	if err := kube.List(ctx, &pods, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing pods: %w", err)
	}
	out := map[string]bool{}
	for id := range annotated(pods.Items) {
		out[id] = true
	}
	return out, nil
}

// annotated maps the ENIs named by the pod-eni annotations of the live pods among pods to
// their pod. A finished pod owns nothing: it never runs again.
func annotated(pods []corev1.Pod) map[string]*corev1.Pod {
	out := map[string]*corev1.Pod{}
	for i := range pods {
		p := &pods[i]
		v, ok := p.Annotations[v1beta1.AnnotationPodENI]
		if !ok || policy.Terminal(p) {
			continue
		}
		enis, err := v1beta1.ParsePodENIs(v)
		if err != nil {
			continue // only podsg-controller writes it; nothing to own in what it cannot parse
		}
		for _, e := range enis {
			out[e.ENIID] = p
		}
	}
	return out
}

// TagOwner reports whether pod, named by a branch ENI's tags (the pod it was created for),
// still owns it: the pod runs and is annotated with it, or with no branch yet (created for
// it, not yet annotated). A pod annotated with another branch (a reused one, after a crash
// between this one's create and its annotation) does not.
func TagOwner(pod *corev1.Pod, eniID string) bool {
	if policy.Terminal(pod) {
		return false
	}
	v, ok := pod.Annotations[v1beta1.AnnotationPodENI]
	if !ok {
		return true
	}
	enis, err := v1beta1.ParsePodENIs(v)
	return err == nil && slices.ContainsFunc(enis, func(e v1beta1.PodENI) bool { return e.ENIID == eniID })
}
