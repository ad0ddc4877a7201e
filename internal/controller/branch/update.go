package branch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/podcache"
	"github.com/podsg/podsg/internal/policy"
)

// +kubebuilder:rbac:groups=vpcresources.k8s.aws,resources=securitygrouppolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch

// GroupsEC2 is what the updater calls.
type GroupsEC2 interface {
	ModifyNetworkInterfaceGroups(ctx context.Context, eniID string, groups []string) error
}

// Updater changes the groups of running pods' branch ENIs in place when the groups their
// policies give them change, for pods a policy with updatePolicy InPlace selects (AWS's
// controller, and podsg without the opt-in, change only pods created afterwards). It is its
// own controller, with its own queue, so that updates, which wait behind pods for the EC2
// budget, never hold up an allocation.
type Updater struct {
	kube     client.Client
	ec2      GroupsEC2
	store    *inventory.Store
	recorder events.EventRecorder
	pods     podcache.Lister
}

// NewUpdater returns an Updater that lists a namespace's pods through kube (ReadPodsFrom
// changes that).
func NewUpdater(kube client.Client, ec2 GroupsEC2, store *inventory.Store, rec events.EventRecorder) *Updater {
	return &Updater{kube: kube, ec2: ec2, store: store, recorder: rec, pods: podcache.FromClient(kube)}
}

// ReadPodsFrom makes u list a namespace's pods from pods: podsg-controller gives it its
// cache's indexer (podcache.FromCache). A policy's first event after a restart sends every
// pod of its namespace through annotatedPods, while every pod's own first event is handled:
// a client List, even uncopied, built a PodList of 100,000 pod structs (125 MB) then, live at
// the process's peak.
func (u *Updater) ReadPodsFrom(pods podcache.Lister) *Updater {
	u.pods = pods
	return u
}

// Register adds the updater to mgr: annotated pods, and the pods of a namespace whose
// policies change.
func (u *Updater) Register(mgr ctrl.Manager, opts controller.Options) error {
	annotated := predicate.NewPredicateFuncs(func(o client.Object) bool {
		_, ok := o.GetAnnotations()[v1beta1.AnnotationPodENI]
		return ok
	})
	return ctrl.NewControllerManagedBy(mgr).
		Named("pod.groups").
		For(&corev1.Pod{}, builder.WithPredicates(annotated)).
		// A policy's spec, not its status: the status controller rewrites the status as pods
		// come and go, and each rewrite would send every annotated pod of the namespace here.
		Watches(&v1beta1.SecurityGroupPolicy{}, handler.EnqueueRequestsFromMapFunc(u.annotatedPods),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(opts).
		Complete(u)
}

func (u *Updater) annotatedPods(ctx context.Context, p client.Object) []reconcile.Request {
	// Read only, so the cache's own objects: a copy of every pod of the namespace for a few
	// annotations is most of what a policy change costs with thousands of pods.
	pods, err := u.pods(ctx, p.GetNamespace())
	if err != nil {
		logf.FromContext(ctx).Error(err, "listing the pods of a changed policy's namespace", "policy", client.ObjectKeyFromObject(p))
		return nil
	}
	var out []reconcile.Request
	for _, pod := range pods {
		if _, ok := pod.Annotations[v1beta1.AnnotationPodENI]; ok {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(pod)})
		}
	}
	return out
}

// Reconcile brings a running pod's branch ENI to the groups its policies give it now, when
// one of them says InPlace.
func (u *Updater) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pod := &corev1.Pod{}
	if err := u.kube.Get(ctx, req.NamespacedName, pod); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if _, ok := pod.Annotations[v1beta1.AnnotationPodENI]; !ok || finished(pod) || pod.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	want, by, err := u.wanted(ctx, pod)
	if err != nil || want == nil {
		return reconcile.Result{}, err
	}
	have := policy.SplitGroups(pod.Annotations[v1beta1.AnnotationSecurityGroups])
	if inventory.SameGroups(want, have) {
		return reconcile.Result{}, nil
	}
	i := slices.IndexFunc(u.store.Owned(pod.Namespace, pod.Name), func(b inventory.Branch) bool { return b.PodUID == pod.UID && b.ENIID != "" })
	if i < 0 {
		// Not in this process's inventory yet (its trunk is being adopted): look again soon.
		return reconcile.Result{RequeueAfter: 2 * time.Second}, nil
	}
	b := u.store.Owned(pod.Namespace, pod.Name)[i]
	ctx = cloud.WithPurpose(ctx, cloud.PurposeUpdate)
	// As for a parked branch: unknown groups while the call is in flight (see setGroups).
	u.store.Update(b.Node, pod.UID, func(s *inventory.Branch) { s.Groups = nil })
	if err := u.ec2.ModifyNetworkInterfaceGroups(ctx, b.ENIID, want); err != nil {
		u.recorder.Eventf(pod, nil, corev1.EventTypeWarning, v1beta1.ReasonSecurityGroupsUpdateFailed, "UpdateGroups",
			"changing the groups of branch ENI %s to [%s] (policy %s): %v; retrying", b.ENIID, strings.Join(want, " "), by, err)
		return reconcile.Result{}, fmt.Errorf("changing the groups of branch %s of pod %s: %w", b.ENIID, podKey(pod), err)
	}
	u.store.Update(b.Node, pod.UID, func(s *inventory.Branch) { s.Groups = inventory.SortedGroups(want) })
	if err := u.annotateGroups(ctx, pod, want); err != nil {
		return reconcile.Result{}, err
	}
	updated.Inc()
	u.recorder.Eventf(pod, nil, corev1.EventTypeNormal, v1beta1.ReasonSecurityGroupsUpdated, "UpdateGroups",
		"Security groups of branch ENI %s changed in place from [%s] to [%s] (policy %s)", b.ENIID,
		strings.Join(have, " "), strings.Join(want, " "), by)
	logf.FromContext(ctx).Info("branch ENI groups changed in place", "eni", b.ENIID, "groups", want, "policy", by)
	return reconcile.Result{}, nil
}

// wanted returns the groups the pod's policies give it now, and the name of the policy whose
// updatePolicy InPlace asks for the change; nil when none does, or no policy selects it (a
// branch ENI cannot have no groups: it keeps its own).
func (u *Updater) wanted(ctx context.Context, pod *corev1.Pod) ([]string, string, error) {
	var list v1beta1.SecurityGroupPolicyList
	if err := u.kube.List(ctx, &list, client.InNamespace(pod.Namespace)); err != nil {
		return nil, "", fmt.Errorf("listing policies: %w", err)
	}
	if !slices.ContainsFunc(list.Items, func(p v1beta1.SecurityGroupPolicy) bool { return p.Spec.UpdatePolicy == v1beta1.UpdatePolicyInPlace }) {
		return nil, "", nil
	}
	sa := &corev1.ServiceAccount{}
	if err := u.kube.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: policy.ServiceAccountName(pod)}, sa); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, "", fmt.Errorf("getting the pod's ServiceAccount: %w", err)
		}
		sa = nil
	}
	m, _ := policy.PodGroups(pod, sa, list.Items) // a policy that cannot be parsed selects nothing
	for _, name := range m.Policies {
		i := slices.IndexFunc(list.Items, func(p v1beta1.SecurityGroupPolicy) bool { return p.Name == name })
		if list.Items[i].Spec.UpdatePolicy == v1beta1.UpdatePolicyInPlace && len(m.Groups) > 0 {
			return m.Groups, name, nil
		}
	}
	return nil, "", nil
}

// annotateGroups records the pod's new groups, which the node agent, `podsg explain` and the
// next update read. Like the pod-eni annotation, only podsg-controller may write it.
func (u *Updater) annotateGroups(ctx context.Context, pod *corev1.Pod, groups []string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid": pod.UID, "annotations": map[string]string{v1beta1.AnnotationSecurityGroups: policy.JoinGroups(groups)}}})
	if err != nil {
		return fmt.Errorf("encoding annotation patch: %w", err)
	}
	if err := u.kube.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("annotating pod %s with its new groups: %w", podKey(pod), err)
	}
	return nil
}
