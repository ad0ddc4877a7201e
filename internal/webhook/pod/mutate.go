// Package pod serves podsg's admission webhooks for pods: the mutating one that asks for a
// branch ENI for pods selected by a SecurityGroupPolicy, the validating one that keeps users
// from writing the annotations the controller and the node agent trust, and the pod identity
// webhook that gives pods the IAM role of their ServiceAccount (internal/podidentity).
package pod

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/policy"
)

// Fail-closed, on purpose. AWS registers this webhook with failurePolicy=Ignore, so while it
// is down pods that a policy selects are admitted without the ENI request and run with the
// node's security groups: a silent security gap. We prefer a pod creation that fails loudly
// and is retried by its controller. The cost (pod creation depends on this webhook) is bounded
// by running two replicas, a short timeout, and the namespaceSelector that config/controller
// adds to exempt kube-system and podsg's own namespace, so the controller can always start.
//
// +kubebuilder:webhook:path=/mutate-v1-pod,mutating=true,failurePolicy=fail,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=mpod.podsg.io,admissionReviewVersions=v1,timeoutSeconds=5,reinvocationPolicy=IfNeeded
// +kubebuilder:rbac:groups=vpcresources.k8s.aws,resources=securitygrouppolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch

// Defaulter adds the pod-eni request and the resolved security groups to pods that a
// SecurityGroupPolicy selects.
type Defaulter struct {
	cache client.Reader // the manager's cache: policies and ServiceAccounts
	api   client.Reader // uncached, for ServiceAccounts the cache has not seen yet
}

var _ admission.Defaulter[*corev1.Pod] = (*Defaulter)(nil)

// NewDefaulter returns a Defaulter reading through cache and falling back to api.
func NewDefaulter(cache, api client.Reader) *Defaulter {
	return &Defaulter{cache: cache, api: api}
}

// Default mutates a pod on CREATE.
func (d *Defaulter) Default(ctx context.Context, pod *corev1.Pod) error {
	// Whatever a user wrote here is not a decision of ours; the controller trusts this
	// annotation, so only the outcome of the evaluation below may stand.
	delete(pod.Annotations, v1beta1.AnnotationSecurityGroups)
	if pod.Spec.HostNetwork || policy.IsWindows(pod) || len(pod.Spec.Containers) == 0 {
		return nil
	}
	ns := pod.Namespace
	if req, err := admission.RequestFromContext(ctx); err == nil && req.Namespace != "" {
		ns = req.Namespace // pods created with generateName may not carry it yet
	}
	m, err := d.evaluate(ctx, ns, pod)
	if err != nil {
		return err
	}
	if len(m.Groups) == 0 {
		return nil
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[v1beta1.AnnotationSecurityGroups] = policy.JoinGroups(m.Groups)
	policy.RequestBranchENI(pod)
	logf.FromContext(ctx).V(1).Info("requesting a branch ENI", "namespace", ns, "groups", m.Groups, "policies", m.Policies)
	return nil
}

func (d *Defaulter) evaluate(ctx context.Context, ns string, pod *corev1.Pod) (policy.Match, error) {
	var list v1beta1.SecurityGroupPolicyList
	if err := d.cache.List(ctx, &list, client.InNamespace(ns)); err != nil {
		if meta.IsNoMatchError(err) {
			return policy.Match{}, nil // the CRD is not installed: no policy can select anything
		}
		return policy.Match{}, apierrors.NewServiceUnavailable(fmt.Sprintf("listing SecurityGroupPolicies: %v", err))
	}
	if len(list.Items) == 0 {
		return policy.Match{}, nil
	}
	var sa *corev1.ServiceAccount
	if needsServiceAccount(list.Items) {
		var err error
		if sa, err = serviceAccount(ctx, d.cache, d.api, ns, policy.ServiceAccountName(pod)); err != nil {
			return policy.Match{}, err
		}
	}
	m, err := policy.PodGroups(pod, sa, list.Items)
	if err != nil {
		// A broken policy selects nothing; the policy's status reports it, the pod goes on.
		logf.FromContext(ctx).Info("skipping unusable policies", "error", err.Error())
	}
	return m, nil
}

// serviceAccount reads through the cache, then the apiserver: a ServiceAccount created just
// before its pod may not have reached the cache, and AWS denying such pods is a known bug.
// A ServiceAccount that does not exist at all yields nil, so pod-selector policies still apply.
func serviceAccount(ctx context.Context, cache, api client.Reader, ns, name string) (*corev1.ServiceAccount, error) {
	sa := &corev1.ServiceAccount{}
	key := types.NamespacedName{Namespace: ns, Name: name}
	err := cache.Get(ctx, key, sa)
	if apierrors.IsNotFound(err) {
		err = api.Get(ctx, key, sa)
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("getting ServiceAccount %s: %v", key, err))
	}
	return sa, nil
}

func needsServiceAccount(policies []v1beta1.SecurityGroupPolicy) bool {
	for i := range policies {
		if policies[i].Spec.ServiceAccountSelector != nil {
			return true
		}
	}
	return false
}
