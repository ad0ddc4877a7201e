package pod

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/webhook"
)

// Fail-closed for the same reason as the mutating webhook, and more: while it is down, anyone
// who can create pods could name another pod's branch ENI in vpc.amazonaws.com/pod-eni and the
// node agent would wire it up.
//
// +kubebuilder:webhook:path=/validate-v1-pod,mutating=false,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create;update,versions=v1,name=vpod.podsg.io,admissionReviewVersions=v1,timeoutSeconds=5

// DefaultControllerUsername is the identity of podsg-controller in the shipped deployment.
const DefaultControllerUsername = "system:serviceaccount:podsg-system:podsg-controller"

// Validator keeps the annotations the controller writes, and the node agent trusts, out of
// the hands of everyone but the controller.
type Validator struct {
	controllerUsername string
}

var _ admission.Validator[*corev1.Pod] = (*Validator)(nil)

// NewValidator returns a Validator that lets controllerUsername change the annotations.
func NewValidator(controllerUsername string) *Validator {
	return &Validator{controllerUsername: controllerUsername}
}

// ValidateCreate rejects a pod that arrives with a branch ENI already assigned.
// podsg.io/security-groups needs no check here: the mutating webhook overwrites it.
func (v *Validator) ValidateCreate(ctx context.Context, pod *corev1.Pod) (admission.Warnings, error) {
	user, ok := v.requester(ctx)
	if ok {
		return nil, nil
	}
	if _, set := pod.Annotations[v1beta1.AnnotationPodENI]; set {
		return nil, v.denied(v1beta1.AnnotationPodENI, user)
	}
	return nil, nil
}

// ValidateUpdate rejects changes to the controller's annotations by anyone else.
func (v *Validator) ValidateUpdate(ctx context.Context, oldPod, newPod *corev1.Pod) (admission.Warnings, error) {
	user, ok := v.requester(ctx)
	if ok {
		return nil, nil
	}
	for _, k := range webhook.GuardedAnnotations {
		ov, oldOK := oldPod.Annotations[k]
		nv, newOK := newPod.Annotations[k]
		if ov != nv || oldOK != newOK {
			return nil, v.denied(k, user)
		}
	}
	return nil, nil
}

// ValidateDelete allows every delete; the webhook is not registered for them.
func (v *Validator) ValidateDelete(context.Context, *corev1.Pod) (admission.Warnings, error) {
	return nil, nil
}

// requester returns who sent the request and whether that is podsg-controller.
func (v *Validator) requester(ctx context.Context) (string, bool) {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return "", false
	}
	return req.UserInfo.Username, req.UserInfo.Username == v.controllerUsername
}

// denied names both users: when podsg-controller itself is denied, because it runs with other
// credentials than the webhook was told, this is what tells the two apart.
func (v *Validator) denied(annotation, user string) error {
	return fmt.Errorf("annotation %s is set by podsg-controller only (user %q), not by user %q",
		annotation, v.controllerUsername, user)
}
