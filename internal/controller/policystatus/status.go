// Package policystatus is the SecurityGroupPolicy status controller: it reports on each policy
// the pods it selects, whether its groups exist in the cluster's VPC and whether every pod's
// union of groups fits the per-ENI quota. Which policies select a pod is internal/policy's rule.
package policystatus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/podcache"
	"github.com/podsg/podsg/internal/policy"
)

// +kubebuilder:rbac:groups=vpcresources.k8s.aws,resources=securitygrouppolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=vpcresources.k8s.aws,resources=securitygrouppolicies/status,verbs=get;patch;update
// +kubebuilder:rbac:groups="",resources=pods;serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// EC2 is what the status controller calls.
type EC2 interface {
	DescribeSecurityGroups(ctx context.Context, ids []string) ([]cloud.SecurityGroup, error)
}

// Options configure the status controller.
type Options struct {
	VPCID                string // "" skips the VPC check
	SecurityGroupsPerENI int
	// Recheck is how often groups are looked up again even if nothing changed: a group can
	// be deleted in EC2 without Kubernetes hearing about it.
	Recheck time.Duration
	// Settle is how long a pod or ServiceAccount change waits before its namespace's policies
	// are counted again (default 1s): the changes of that time are counted once. Counting
	// lists the namespace's pods, so with thousands of pods created a second, counting for
	// each would be quadratic.
	Settle time.Duration
	// Now is the clock of the group checks (default time.Now).
	Now func() time.Time
	// Pods lists a namespace's pods (default: through the client, without deep copies);
	// podsg-controller reads its cache's indexer (podcache.FromCache).
	Pods podcache.Lister
}

// Controller fills in SecurityGroupPolicy status: matched pods, whether its groups
// exist in the cluster's VPC, and whether every pod's union fits the per-ENI quota. AWS gives
// policies no status at all, so a typo in a group id only shows up as stuck pods.
type Controller struct {
	kube     client.Client
	ec2      EC2
	recorder events.EventRecorder
	opts     Options

	mu sync.Mutex
	// checked is the last group check of each policy: a count of pods reconciles a policy
	// far more often than its groups change, and each check is an EC2 describe call.
	checked map[types.NamespacedName]groupCheck
}

// groupCheck is the outcome of one policy's group check.
type groupCheck struct {
	groups string // the policy's groups, sorted and joined
	at     time.Time
	cond   metav1.Condition
}

// New returns a status controller.
func New(kube client.Client, ec2 EC2, rec events.EventRecorder, opts Options) *Controller {
	if opts.Recheck == 0 {
		opts.Recheck = 10 * time.Minute
	}
	if opts.Settle == 0 {
		opts.Settle = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Pods == nil {
		opts.Pods = podcache.FromClient(kube)
	}
	return &Controller{kube: kube, ec2: ec2, recorder: rec, opts: opts, checked: map[types.NamespacedName]groupCheck{}}
}

// Register adds the controller to mgr; pod and ServiceAccount changes requeue the policies of
// their namespace, since they change what the policies match, after Settle.
func (c *Controller) Register(mgr ctrl.Manager, opts controller.Options) error {
	settled := c.settled()
	return ctrl.NewControllerManagedBy(mgr).
		Named("securitygrouppolicy.status").
		For(&v1beta1.SecurityGroupPolicy{}).
		Watches(&corev1.Pod{}, settled).
		Watches(&corev1.ServiceAccount{}, settled).
		WithOptions(opts).
		Complete(reconcile.Func(c.reconcileRequest))
}

// reconcileRequest reads the requested policy and reconciles it. A policy that is gone takes
// its group check with it: otherwise the map would keep every policy ever deleted.
func (c *Controller) reconcileRequest(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	p := &v1beta1.SecurityGroupPolicy{}
	if err := c.kube.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			c.mu.Lock()
			delete(c.checked, req.NamespacedName)
			c.mu.Unlock()
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading policy %s: %w", req.NamespacedName, err)
	}
	return c.Reconcile(ctx, p)
}

// settled enqueues the policies of a changed object's namespace Settle later. The queue keeps
// one entry per policy, at its earliest time, so every change within Settle of the first
// is counted by the same reconcile.
func (c *Controller) settled() handler.EventHandler {
	add := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		for _, r := range c.policiesInNamespace(ctx, o) {
			q.AddAfter(r, c.opts.Settle)
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, e.Object, q)
		},
	}
}

func (c *Controller) policiesInNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	var list v1beta1.SecurityGroupPolicyList
	if err := c.kube.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}

// Reconcile computes and patches one policy's status.
func (c *Controller) Reconcile(ctx context.Context, p *v1beta1.SecurityGroupPolicy) (reconcile.Result, error) {
	matched, maxUnion, pods, err := c.matches(ctx, p)
	if err != nil {
		return reconcile.Result{}, err
	}
	found, err := c.groupsFound(ctx, p)
	if err != nil {
		return reconcile.Result{}, err
	}
	quota := metav1.Condition{Type: v1beta1.ConditionWithinQuota, Status: metav1.ConditionTrue, Reason: "WithinQuota",
		Message: fmt.Sprintf("the largest union of groups over matched pods is %d, quota %d", maxUnion, c.opts.SecurityGroupsPerENI)}
	if maxUnion > c.opts.SecurityGroupsPerENI {
		quota.Status, quota.Reason = metav1.ConditionFalse, "QuotaExceeded"
		quota.Message = fmt.Sprintf("a matched pod would get %d groups, more than the %d EC2 allows per ENI; its branch ENI cannot be created",
			maxUnion, c.opts.SecurityGroupsPerENI)
	}
	ready := metav1.Condition{Type: v1beta1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Ready", Message: "policy can be applied"}
	if found.Status != metav1.ConditionTrue || quota.Status != metav1.ConditionTrue {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "NotReady", "see the GroupsFound and WithinQuota conditions"
	}
	next := p.DeepCopy()
	next.Status.MatchedPods = int32(matched) //nolint:gosec // a count of pods in one namespace: far below 2^31
	next.Status.Pods = &pods
	next.Status.ObservedGeneration = p.Generation
	for _, cond := range []metav1.Condition{found, quota, ready} {
		cond.ObservedGeneration = p.Generation
		meta.SetStatusCondition(&next.Status.Conditions, cond)
	}
	if !equality.Semantic.DeepEqual(p.Status, next.Status) {
		if err := c.kube.Status().Patch(ctx, next, client.MergeFrom(p)); err != nil {
			return reconcile.Result{}, fmt.Errorf("patching policy status: %w", err)
		}
	}
	return reconcile.Result{RequeueAfter: c.opts.Recheck}, nil
}

// matches counts the live pods the policy selects, the largest union of groups any of them
// gets from all the namespace's policies, and how the pods' groups stand against that union.
func (c *Controller) matches(ctx context.Context, p *v1beta1.SecurityGroupPolicy) (int, int, v1beta1.PodGroupsStatus, error) {
	var sas corev1.ServiceAccountList
	var all v1beta1.SecurityGroupPolicyList
	var st v1beta1.PodGroupsStatus
	for _, l := range []client.ObjectList{&sas, &all} {
		if err := c.kube.List(ctx, l, client.InNamespace(p.Namespace)); err != nil {
			return 0, 0, st, fmt.Errorf("listing %T: %w", l, err)
		}
	}
	// Read only: the cache's own pods, not a copy of every pod of the namespace.
	pods, err := c.opts.Pods(ctx, p.Namespace)
	if err != nil {
		return 0, 0, st, err
	}
	saLabels := map[string]map[string]string{}
	for _, sa := range sas.Items {
		saLabels[sa.Name] = sa.Labels
	}
	matched, maxUnion := 0, 0
	for _, pod := range pods {
		if policy.Terminal(pod) {
			continue
		}
		sl := saLabels[policy.ServiceAccountName(pod)]
		if ok, _ := policy.Selects(p, pod.Labels, sl); !ok {
			continue
		}
		matched++
		m, _ := policy.Evaluate(pod.Labels, sl, all.Items)
		maxUnion = max(maxUnion, len(m.Groups))
		standing(&st, pod, m.Groups)
	}
	return matched, maxUnion, st, nil
}

// standing counts one selected pod: Current when its branch carries the groups its policies
// give it (as podsg-controller records them on the pod), Pending when it has or awaits a
// branch with other groups, NeedRecreation when it runs on its node's ENI: it never asked for
// a branch, and a pod's requests cannot change. Windows pods never get one; they are not
// counted.
func standing(st *v1beta1.PodGroupsStatus, pod *corev1.Pod, want []string) {
	switch _, annotated := pod.Annotations[v1beta1.AnnotationPodENI]; {
	case policy.IsWindows(pod):
	case !policy.WantsBranchENI(pod):
		st.NeedRecreation++
	case annotated && sameSet(policy.SplitGroups(pod.Annotations[v1beta1.AnnotationSecurityGroups]), want):
		st.Current++
	default:
		st.Pending++
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// groupsFound checks that every group exists in the cluster's VPC, with a Warning event
// naming the missing ones; a policy whose groups were checked less than Recheck ago keeps that
// outcome without asking EC2 again. Throttling and outages are returned, to retry.
func (c *Controller) groupsFound(ctx context.Context, p *v1beta1.SecurityGroupPolicy) (metav1.Condition, error) {
	key, groups := client.ObjectKeyFromObject(p), slices.Sorted(slices.Values(p.Spec.SecurityGroups.Groups))
	joined, now := strings.Join(groups, ","), c.opts.Now()
	c.mu.Lock()
	last, ok := c.checked[key]
	c.mu.Unlock()
	if ok && last.groups == joined && now.Sub(last.at) < c.opts.Recheck {
		return last.cond, nil
	}
	cond, err := c.checkGroups(ctx, p)
	if err != nil {
		return cond, err
	}
	c.mu.Lock()
	c.checked[key] = groupCheck{groups: joined, at: now, cond: cond}
	c.mu.Unlock()
	return cond, nil
}

// checkGroups asks EC2 for the policy's groups.
func (c *Controller) checkGroups(ctx context.Context, p *v1beta1.SecurityGroupPolicy) (metav1.Condition, error) {
	cond := metav1.Condition{Type: v1beta1.ConditionGroupsFound, Status: metav1.ConditionTrue, Reason: "GroupsFound", Message: "every group exists"}
	groups, err := c.ec2.DescribeSecurityGroups(ctx, p.Spec.SecurityGroups.Groups)
	switch {
	case errors.Is(err, cloud.ErrNotFound), errors.Is(err, cloud.ErrInvalid):
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "GroupsNotFound", err.Error()
	case err != nil:
		return cond, fmt.Errorf("describing security groups: %w", err)
	case c.opts.VPCID != "":
		var foreign []string
		for _, g := range groups {
			if g.VPCID != c.opts.VPCID {
				foreign = append(foreign, g.ID+" ("+g.VPCID+")")
			}
		}
		if len(foreign) > 0 {
			slices.Sort(foreign)
			cond.Status, cond.Reason = metav1.ConditionFalse, "WrongVPC"
			cond.Message = fmt.Sprintf("groups not in the cluster's VPC %s: %s", c.opts.VPCID, strings.Join(foreign, ", "))
		}
	}
	if cond.Status == metav1.ConditionFalse {
		c.recorder.Eventf(p, nil, corev1.EventTypeWarning, cond.Reason, "CheckGroups", "%s", cond.Message)
	}
	return cond, nil
}
