package pod

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/policy"
)

// The pod identity webhook, AWS's amazon-eks-pod-identity-webhook's counterpart.
//
// Fail-closed, where AWS's is failurePolicy=Ignore: a pod admitted without its role does not
// fail, it runs with whatever the SDKs' default credential chain finds next, typically the
// node's instance profile through IMDS, a different identity that fails (or succeeds) far from
// the cause. Pods of the namespaces it serves already depend on podsg-controller through the
// security group webhook, whose namespaceSelector it shares (kube-system and podsg's own
// namespace are exempt), so failing closed adds no new dependency. reinvocationPolicy=IfNeeded:
// a container another webhook adds after this one (a sidecar injector) gets the role too;
// podidentity.Apply is idempotent.
//
// +kubebuilder:webhook:path=/mutate-v1-pod-identity,mutating=true,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=mpodidentity.podsg.io,admissionReviewVersions=v1,timeoutSeconds=5,reinvocationPolicy=IfNeeded
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch

// IdentityDefaulter gives a pod the IAM role its ServiceAccount names.
type IdentityDefaulter struct {
	cache client.Reader // the manager's cache: ServiceAccounts
	api   client.Reader // uncached, for ServiceAccounts the cache has not seen yet
	opts  podidentity.Options
}

var _ admission.Defaulter[*corev1.Pod] = (*IdentityDefaulter)(nil)

// NewIdentityDefaulter returns an IdentityDefaulter reading through cache and falling back to api.
func NewIdentityDefaulter(cache, api client.Reader, opts podidentity.Options) *IdentityDefaulter {
	return &IdentityDefaulter{cache: cache, api: api, opts: opts}
}

// Default mutates a pod on CREATE. The ServiceAccount comes from the cache, read by every
// admission, and from the apiserver only when the cache does not have it (created just
// before the pod); AWS's webhook instead waits a grace period for its informer and mutates
// nothing if the ServiceAccount has not arrived. A ServiceAccount the cache has but whose role
// annotation it has not seen yet (annotated an instant before the pod was created) gives no
// role, as on AWS: podsg explain shows it and says to recreate the pod.
func (d *IdentityDefaulter) Default(ctx context.Context, pod *corev1.Pod) error {
	if _, skip := pod.Labels[podidentity.LabelSkipWebhook]; skip {
		return nil // before any lookup: the pod opted out
	}
	ns := pod.Namespace
	if req, err := admission.RequestFromContext(ctx); err == nil && req.Namespace != "" {
		ns = req.Namespace // pods created with generateName may not carry it yet
	}
	sa, err := serviceAccount(ctx, d.cache, d.api, ns, policy.ServiceAccountName(pod))
	if err != nil {
		return err
	}
	res := podidentity.Apply(pod, sa, d.opts)
	log := logf.FromContext(ctx).V(1)
	switch {
	case res.Skipped != "":
		log.Info("no IAM role", "namespace", ns, "reason", res.Skipped)
	case res.Changed:
		log.Info("injecting IAM role", "namespace", ns, "role", res.Config.RoleARN, "audience", res.Config.Audience)
	}
	return nil
}
