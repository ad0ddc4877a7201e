package pod

import (
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/podsg/podsg/internal/webhook"
)

// Setup registers both pod webhooks with mgr's webhook server.
func Setup(mgr ctrl.Manager, controllerUsername string) error {
	return ctrl.NewWebhookManagedBy(mgr, &corev1.Pod{}).
		WithDefaulter(NewDefaulter(mgr.GetClient(), mgr.GetAPIReader())).
		WithDefaulterCustomPath(webhook.MutatePath).
		WithValidator(NewValidator(controllerUsername)).
		WithValidatorCustomPath(webhook.ValidatePath).
		Complete()
}
