package branch

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// addFinalizer adds Finalizer with a strategic merge patch, which appends to the list instead
// of replacing other controllers' finalizers, and carries the UID as a precondition.
func (c *Controller) addFinalizer(ctx context.Context, pod *corev1.Pod) error {
	if slices.Contains(pod.Finalizers, Finalizer) {
		return nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"uid":%q,"finalizers":[%q]}}`, pod.UID, Finalizer)
	if err := c.kube.Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return fmt.Errorf("adding finalizer: %w", err)
	}
	return nil
}

func (c *Controller) removeFinalizer(ctx context.Context, pod *corev1.Pod) error {
	if !slices.Contains(pod.Finalizers, Finalizer) {
		return nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"uid":%q,"$deleteFromPrimitiveList/finalizers":[%q]}}`, pod.UID, Finalizer)
	if err := c.kube.Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("removing finalizer: %w", err))
	}
	return nil
}
