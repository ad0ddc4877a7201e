// Package branch gives each pod that requested vpc.amazonaws.com/pod-eni its own branch ENI
// on its node's trunk, with exactly the security groups admission resolved, and frees the ENI
// after a cool-down once the pod is gone. It also sweeps ENIs nothing owns.
package branch

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/policy"
)

// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// EC2 is what the branch controller, the releaser and the sweeper call.
type EC2 interface {
	CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error)
	DeleteNetworkInterface(ctx context.Context, id string) error
	DetachNetworkInterface(ctx context.Context, attachmentID string, force bool) error
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	AssociateTrunkInterface(ctx context.Context, trunkID, branchID string, vlan int, clientToken string) (cloud.TrunkAssociation, error)
	DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error
	DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error)
	ModifyNetworkInterfaceGroups(ctx context.Context, eniID string, groups []string) error
}

// PodNodeIndex indexes pods by spec.nodeName.
const PodNodeIndex = trunk.PodNodeIndex

// Options configure the branch controller.
type Options struct {
	ClusterName string
	// Cooldown is how long an ENI stays unused after its pod ends, so that its address is not
	// reused while peers still have it in their ARP caches.
	Cooldown time.Duration
	// TrunkWait is how often a pod bound to a node without a trunk yet is looked at again.
	TrunkWait time.Duration
	// TrunkWanted, when set, is told the node of a pod that waits for its trunk, so that the
	// trunk controller sets up that node before nodes nobody waits for: after a restart it
	// adopts thousands of nodes in no particular order, and a new pod should not wait for
	// all of them.
	TrunkWanted func(nodeName string)
	// Identity is the user podsg-controller writes the pod annotations as, named in the event
	// when a write is denied.
	Identity string
}

// Controller reconciles pods.
type Controller struct {
	kube     client.Client
	ec2      EC2
	store    *inventory.Store
	recorder events.EventRecorder
	clock    clock.Clock
	opts     Options
	// waiting are the pods that wait for their node's trunk, by pod (their node's name):
	// TrunkReady sends them to ready, which the controller's queue watches.
	mu      sync.Mutex
	waiting map[types.NamespacedName]string
	ready   chan event.GenericEvent
}

// New returns a branch controller.
func New(kube client.Client, ec2 EC2, store *inventory.Store, rec events.EventRecorder, clk clock.Clock, opts Options) *Controller {
	if opts.TrunkWait == 0 {
		opts.TrunkWait = 2 * time.Second
	}
	return &Controller{kube: kube, ec2: ec2, store: store, recorder: rec, clock: clk, opts: opts,
		waiting: map[types.NamespacedName]string{}, ready: make(chan event.GenericEvent, 1024)}
}

// TrunkReady sends the pods waiting for nodeName's trunk to the queue at once, at normal
// priority. After a restart the queue holds every pod of the cluster, at low priority (the
// informer's first list) and a pod waiting for its trunk comes back there after TrunkWait,
// behind tens of thousands of them.
func (c *Controller) TrunkReady(nodeName string) {
	c.mu.Lock()
	var pods []types.NamespacedName
	for p, n := range c.waiting {
		if n == nodeName {
			pods = append(pods, p)
			delete(c.waiting, p)
		}
	}
	c.mu.Unlock()
	for _, p := range pods {
		select {
		case c.ready <- event.GenericEvent{Object: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name}}}:
		default: // full: its TrunkWait requeue still comes
		}
	}
}

// wait records that pod waits for its node's trunk; its node's name "" forgets it.
func (c *Controller) wait(pod types.NamespacedName, nodeName string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nodeName == "" {
		delete(c.waiting, pod)
		return
	}
	c.waiting[pod] = nodeName
}

// IndexPods registers PodNodeIndex; call once per manager before Register.
func IndexPods(ctx context.Context, mgr ctrl.Manager) error { return trunk.IndexPods(ctx, mgr) }

// Register adds the controller to mgr. Nodes are watched so that pods waiting for their
// node's trunk go as soon as it is there (its label changes, or TrunkReady tells).
func (c *Controller) Register(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("pod.branch").
		For(&corev1.Pod{}).
		Watches(&corev1.Pod{}, handler.Funcs{CreateFunc: pendingFirst}).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(c.podsOnNode),
			builder.WithPredicates(predicate.LabelChangedPredicate{}, notInFirstList)).
		WatchesRawSource(source.Channel(c.ready, &handler.EnqueueRequestForObject{})).
		WithOptions(opts).
		Complete(c)
}

// notInFirstList drops the nodes of the informer's first list: their pods are in the pods'
// first list already, and mapping each node to its pods again cost a list of the cache and
// 20 more queue entries per node (34,000 at 1,700 nodes) after every restart.
var notInFirstList = predicate.Funcs{CreateFunc: func(e event.CreateEvent) bool { return !e.IsInInitialList }}

// pendingFirst puts the pods of the informer's first list that wait for a branch at normal
// priority: For puts every pod of that list at low priority, and after a restart a pod bound
// before it would wait behind every pod of the cluster, each already served.
func pendingFirst(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
	pod, ok := e.Object.(*corev1.Pod)
	if !ok || !e.IsInInitialList || !pending(pod) {
		return
	}
	req := reconcile.Request{NamespacedName: podKey(pod)}
	if pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); ok {
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: new(0)}, req)
	}
}

// pending: the pod is bound, asked for a branch and has none yet.
func pending(pod *corev1.Pod) bool {
	_, done := pod.Annotations[v1beta1.AnnotationPodENI]
	return !done && pod.Spec.NodeName != "" && pod.DeletionTimestamp == nil && policy.WantsBranchENI(pod)
}

func (c *Controller) podsOnNode(ctx context.Context, n client.Object) []reconcile.Request {
	var pods corev1.PodList
	if err := c.kube.List(ctx, &pods, client.MatchingFields{PodNodeIndex: n.GetName()}); err != nil {
		return nil
	}
	var out []reconcile.Request
	for i := range pods.Items {
		if policy.WantsBranchENI(&pods.Items[i]) {
			out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&pods.Items[i])})
		}
	}
	return out
}

// Finalizer holds a pod that has (or is getting) a branch ENI until the controller has put the
// ENI into cool-down and lowered the node's advertised capacity. Without it the scheduler sees
// the pod's slot free the moment the pod is deleted, and places a pod that must then wait out
// the cool-down.
const Finalizer = "podsg.io/branch-eni"

// Reconcile releases the branches of pods that are gone, replaced or finished, and allocates
// one for a bound pod that asked for it.
func (c *Controller) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	pod := &corev1.Pod{}
	if err := c.kube.Get(ctx, req.NamespacedName, pod); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("getting pod: %w", err)
		}
		pod = nil
	}
	// 1. Release what no running pod of this name owns any more, and tell the scheduler before
	// the pod may go.
	released := map[string]bool{}
	for _, b := range c.store.Owned(req.Namespace, req.Name) {
		if pod == nil || pod.UID != b.PodUID || finished(pod) {
			c.store.Release(b.Node, b.PodUID, c.clock.Now().Add(c.opts.Cooldown))
			released[b.Node] = true
		}
	}
	for nodeName := range released {
		if err := trunk.AdvertiseCapacity(ctx, c.kube, c.store, nodeName); err != nil {
			return reconcile.Result{}, err
		}
	}
	switch {
	case pod == nil:
		c.wait(req.NamespacedName, "")
		return reconcile.Result{}, nil
	case finished(pod):
		return reconcile.Result{}, c.removeFinalizer(ctx, pod)
	case pod.DeletionTimestamp != nil:
		// Still running out its grace period: it keeps its ENI until the kubelet is done.
		return reconcile.Result{}, nil
	case !policy.WantsBranchENI(pod) || pod.Spec.NodeName == "":
		return reconcile.Result{}, nil
	}
	if _, done := pod.Annotations[v1beta1.AnnotationPodENI]; done {
		return reconcile.Result{}, nil
	}
	// 2. Allocate.
	return c.allocate(ctx, pod)
}

// finished: the pod's containers will not run again, so its ENI can start cooling down.
// A deletion with no grace period left means the kubelet is done (or someone forced it).
func finished(pod *corev1.Pod) bool {
	if policy.Terminal(pod) {
		return true
	}
	return pod.DeletionTimestamp != nil && (pod.DeletionGracePeriodSeconds == nil || *pod.DeletionGracePeriodSeconds == 0)
}

func podKey(pod *corev1.Pod) types.NamespacedName { return client.ObjectKeyFromObject(pod) }
