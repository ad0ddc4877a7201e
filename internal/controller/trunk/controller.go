// Package trunk is the trunk controller (node.trunk): it turns a node that asks for a trunk
// (label vpc.amazonaws.com/has-trunk-attached=false) into a trunk node by creating or adopting
// its trunk ENI, advertises the node's vpc.amazonaws.com/pod-eni capacity, and frees every ENI
// of a node that is deleted. What it learns goes into internal/controller/inventory.
package trunk

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/limits"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups="",resources=nodes/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// EC2 is what the trunk controller calls. Errors are classified into cloud's kinds.
type EC2 interface {
	DescribeInstance(ctx context.Context, id string) (cloud.Instance, error)
	DescribeInstances(ctx context.Context, ids []string) ([]cloud.Instance, error)
	DescribeSubnet(ctx context.Context, id string) (cloud.Subnet, error)
	CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error)
	AttachNetworkInterface(ctx context.Context, eniID, instanceID string, deviceIndex int) (string, error)
	DetachNetworkInterface(ctx context.Context, attachmentID string, force bool) error
	DeleteNetworkInterface(ctx context.Context, id string) error
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error)
	DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error
}

// Options configure the controller.
type Options struct {
	ClusterName string
	// Cooldown is how long a branch ENI found without a live pod waits before deletion.
	Cooldown time.Duration
	// Again, when set, takes the nodes put off while the start-up read runs, when it ends
	// (the controller's change channel, which its queue watches). Unset, their reconciles
	// wait for the read.
	Again chan<- event.GenericEvent
	// Context is the controller's life (the manager's): the start-up read, which the first
	// reconcile starts, runs on it, and so does the sending of the nodes put off meanwhile. A
	// reconcile's context ends with that reconcile (with a reconcile timeout) and logs as its
	// node. Unset, the first reconcile's context is used.
	Context context.Context
	// Ready, when set, is told each node whose trunk was just set up or adopted: pods waiting
	// for it can go at once.
	Ready func(nodeName string)
}

// Controller reconciles nodes: their trunk ENI and pod-eni capacity.
type Controller struct {
	kube     client.Client
	ec2      EC2
	store    *inventory.Store
	limits   *limits.Table
	recorder events.EventRecorder
	clock    clock.Clock
	opts     Options
	changes  <-chan event.GenericEvent
	startup  startup
	subnets  sync.Map // subnet id → cloud.Subnet
}

// New returns a trunk controller. changes carries nodes whose capacity the store changed.
func New(kube client.Client, ec2 EC2, store *inventory.Store, tab *limits.Table, rec events.EventRecorder,
	clk clock.Clock, changes <-chan event.GenericEvent, opts Options) *Controller {
	return &Controller{kube: kube, ec2: ec2, store: store, limits: tab, recorder: rec, clock: clk, changes: changes, opts: opts}
}

// Register adds the controller to mgr.
func (c *Controller) Register(mgr ctrl.Manager, opts controller.Options) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("node.trunk").
		For(&corev1.Node{}).
		WatchesRawSource(source.Channel(c.changes, &handler.EnqueueRequestForObject{})).
		WithOptions(opts).
		Complete(c)
}

// Reconcile ensures a node's trunk, label and capacity, or frees the ENIs of a deleted node.
func (c *Controller) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	n := &corev1.Node{}
	if err := c.kube.Get(ctx, req.NamespacedName, n); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, c.teardown(cloud.WithPurpose(ctx, cloud.PurposeCleanup), req.Name)
		}
		return reconcile.Result{}, fmt.Errorf("getting node: %w", err)
	}
	if _, asked := n.Labels[v1beta1.LabelHasTrunkAttached]; !asked {
		return reconcile.Result{}, nil
	}
	// 1. A trunk, created or adopted (after a restart, from EC2). One on another instance is
	// the trunk of a node deleted and created again under this name: freed as for a deleted node.
	t, ok := c.store.Trunk(n.Name)
	if ok && replaced(t, n) {
		logf.FromContext(ctx).Info("node created again under its name on another instance; freeing the old node's trunk",
			"node", n.Name, "trunk", t.ID, "oldInstance", t.InstanceID)
		if err := c.teardown(cloud.WithPurpose(ctx, cloud.PurposeCleanup), n.Name); err != nil {
			return reconcile.Result{}, err
		}
		ok = false
	}
	if !ok {
		ok, err := c.ensureTrunk(cloud.WithPurpose(ctx, cloud.PurposeNode), n)
		if err != nil || !ok {
			return reconcile.Result{}, err
		}
		if c.opts.Ready != nil {
			c.opts.Ready(n.Name)
		}
	}
	// 2. Tell the node agent, then the scheduler.
	if err := c.patchLabel(ctx, n); err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, advertiseCapacity(ctx, c.kube, c.store, n)
}

func (c *Controller) patchLabel(ctx context.Context, n *corev1.Node) error {
	if n.Labels[v1beta1.LabelHasTrunkAttached] == "true" {
		return nil
	}
	patch := fmt.Appendf(nil, `{"metadata":{"labels":{%q:"true"}}}`, v1beta1.LabelHasTrunkAttached)
	if err := c.kube.Patch(ctx, n, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("labelling node: %w", err)
	}
	return nil
}

// AdvertiseCapacity patches a node's pod-eni capacity from the store at once. The branch
// controller calls it before letting a pod go, so that the scheduler never sees the pod's
// slot free while its ENI still cools down.
func AdvertiseCapacity(ctx context.Context, kube client.Client, store *inventory.Store, nodeName string) error {
	n := &corev1.Node{}
	if err := kube.Get(ctx, types.NamespacedName{Name: nodeName}, n); err != nil {
		return client.IgnoreNotFound(err)
	}
	return advertiseCapacity(ctx, kube, store, n)
}

// advertiseCapacity advertises honest capacity: the branch limit minus ENIs cooling down, in both
// capacity and allocatable (the kubelet may not copy one to the other for a while, and the
// scheduler reads allocatable).
func advertiseCapacity(ctx context.Context, kube client.Client, store *inventory.Store, n *corev1.Node) error {
	u, ok := store.Usage(n.Name)
	if !ok {
		return nil
	}
	for state, count := range map[string]int{"in_use": u.InUse, "cooling": u.Cooling, "parked": u.Parked, "warm": u.Warm, "warming": u.Warming} {
		nodeBranches.WithLabelValues(n.Name, state).Set(float64(count))
	}
	want := strconv.Itoa(u.Available())
	capQ, allocQ := n.Status.Capacity[v1beta1.ResourcePodENI], n.Status.Allocatable[v1beta1.ResourcePodENI]
	if capQ.String() == want && allocQ.String() == want {
		return nil
	}
	patch := fmt.Appendf(nil, `{"status":{"capacity":{%q:%q},"allocatable":{%q:%q}}}`,
		v1beta1.ResourcePodENI, want, v1beta1.ResourcePodENI, want)
	if err := kube.Status().Patch(ctx, n, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("advertising pod-eni capacity: %w", err)
	}
	return nil
}
