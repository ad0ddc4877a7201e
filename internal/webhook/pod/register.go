package pod

import (
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/webhook"
)

// Setup registers every pod webhook with mgr's webhook server: the security group pair and
// the pod identity webhook with identity's settings. All of them, since the generated
// configurations (config/webhook) name them all and each fails closed.
func Setup(mgr ctrl.Manager, controllerUsername string, identity podidentity.Options) error {
	err := ctrl.NewWebhookManagedBy(mgr, &corev1.Pod{}).
		WithDefaulter(NewDefaulter(mgr.GetClient(), mgr.GetAPIReader())).
		WithDefaulterCustomPath(webhook.MutatePath).
		WithValidator(NewValidator(controllerUsername)).
		WithValidatorCustomPath(webhook.ValidatePath).
		Complete()
	if err != nil {
		return err
	}
	return ctrl.NewWebhookManagedBy(mgr, &corev1.Pod{}).
		WithDefaulter(NewIdentityDefaulter(mgr.GetClient(), mgr.GetAPIReader(), identity)).
		WithDefaulterCustomPath(webhook.IdentityPath).
		Complete()
}
