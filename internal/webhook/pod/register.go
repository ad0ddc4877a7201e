package pod

import (
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
)

// Paths the webhooks are served on; they match AWS's, so configurations written for AWS's
// controller can point at ours.
const (
	MutatePath   = "/mutate-v1-pod"
	ValidatePath = "/validate-v1-pod"
)

// Setup registers both pod webhooks with mgr's webhook server.
func Setup(mgr ctrl.Manager, controllerUsername string) error {
	return ctrl.NewWebhookManagedBy(mgr, &corev1.Pod{}).
		WithDefaulter(NewDefaulter(mgr.GetClient(), mgr.GetAPIReader())).
		WithDefaulterCustomPath(MutatePath).
		WithValidator(NewValidator(controllerUsername)).
		WithValidatorCustomPath(ValidatePath).
		Complete()
}
