// Package controller wires podsg-controller: every controller, the webhooks and the runnables
// are listed here, on one controller-runtime manager.
package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller/branch"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/controller/netpolfeedback"
	"github.com/podsg/podsg/internal/controller/podcache"
	"github.com/podsg/podsg/internal/controller/policystatus"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/controller/warm"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/webhook/pod"
)

// Config is what the controllers need besides a manager; Run fills it from Options.
type Config struct {
	ClusterName string
	// VPCID is the cluster's VPC; policies naming groups of another VPC are reported.
	VPCID string
	// Cooldown before a pod's branch ENI is deleted (default 60s, AWS's, the Linux ARP cache timeout).
	Cooldown time.Duration
	// SecurityGroupsPerENI is the EC2 quota (default 5).
	SecurityGroupsPerENI int
	// SweepInterval between orphan sweeps (default 5m).
	SweepInterval time.Duration
	// ReleaseInterval between checks of the cool-down queue (default 5s).
	ReleaseInterval time.Duration
	// NoReuse deletes each branch ENI after its cool-down, as AWS's controller does, instead
	// of parking it for the next pod of its node (today's create-per-pod path, for comparison).
	NoReuse bool
	// IdleTTL is how long a parked or warm branch beyond its warm target is kept (default 10m).
	IdleTTL time.Duration
	// WarmBranchesPerNode is the warm target of a policy that sets none (default 0). Warm
	// pools need reuse: NoReuse turns them off.
	WarmBranchesPerNode int
	// WarmInterval between two passes of the warmer (default 2s).
	WarmInterval time.Duration
	// PodWorkers is how many pods the branch controller allocates for at once (default 8):
	// a pod whose branch is idle on its node need not wait behind one whose EC2 calls wait
	// for the budget.
	PodWorkers int
	// NodeWorkers is how many nodes the trunk controller adopts or sets up at once (default
	// 8). After a restart every node is adopted again, each with a capacity patch to the
	// apiserver: one at a time, that round trip alone held a 1,700-node fleet for half a
	// minute. Nodes share nothing the controller writes but the inventory, which locks.
	NodeWorkers int
	// ControllerUsername is the user podsg-controller runs as, which alone may write the pod
	// annotations (default pod.DefaultControllerUsername; Run learns it at start).
	ControllerUsername string
	// Limits is the instance type table (default: built in).
	Limits *limits.Table
	// Clock drives cool-downs and sweeps; tests step a fake one.
	Clock clock.WithTicker
	// RetryBase and RetryMax bound the per-object exponential backoff (default 250ms, 5m).
	RetryBase, RetryMax time.Duration
	// Webhooks registers the pod webhooks (the manager needs a webhook server).
	Webhooks bool
	// Identity configures the pod identity webhook: the region and, against the local VPC
	// only, its endpoint as pods reach it.
	Identity podidentity.Options
}

func (c *Config) defaults() {
	if c.Cooldown == 0 {
		c.Cooldown = 60 * time.Second
	}
	if c.SecurityGroupsPerENI == 0 {
		c.SecurityGroupsPerENI = 5
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = 5 * time.Minute
	}
	if c.ReleaseInterval == 0 {
		c.ReleaseInterval = 5 * time.Second
	}
	if c.IdleTTL == 0 {
		c.IdleTTL = 10 * time.Minute
	}
	if c.PodWorkers == 0 {
		c.PodWorkers = 8
	}
	if c.NodeWorkers == 0 {
		c.NodeWorkers = 8
	}
	if c.ControllerUsername == "" {
		c.ControllerUsername = pod.DefaultControllerUsername
	}
	if c.Limits == nil {
		c.Limits = limits.MustDefault()
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.RetryBase == 0 {
		c.RetryBase = 250 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 5 * time.Minute
	}
}

// Setup registers every controller, runnable and (if asked) webhook on mgr. ctx is the
// manager's life: what the controllers start outside a reconcile runs on it. It returns the
// inventory, for tests to observe.
func Setup(ctx context.Context, mgr ctrl.Manager, ec2 EC2, cfg Config) (*inventory.Store, error) {
	cfg.defaults()
	if cfg.ClusterName == "" {
		return nil, errors.New("a cluster name is required: it tags every ENI podsg creates")
	}
	if cfg.Webhooks {
		if err := pod.Setup(mgr, cfg.ControllerUsername, cfg.Identity); err != nil {
			return nil, fmt.Errorf("registering pod webhooks: %w", err)
		}
	}
	// The trunk controller's own events: nodes whose capacity the store changed, and nodes a
	// pod waits on. They come before the nodes of the informer's first list (lower priority),
	// so that a restart sets up first the nodes pods are waiting for.
	changes := make(chan event.GenericEvent, 4096)
	nodeChanged := func(name string) {
		select {
		case changes <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}}:
		default: // full: thousands of capacity changes pending; the next node event catches up
		}
	}
	store := inventory.NewStore(nodeChanged)
	rec := mgr.GetEventRecorder(v1beta1.ReportingController)
	opts := controller.Options{RateLimiter: workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconcile.Request](cfg.RetryBase, cfg.RetryMax),
		&workqueue.TypedBucketRateLimiter[reconcile.Request]{Limiter: rate.NewLimiter(rate.Limit(50), 300)},
	)}
	if err := branch.IndexPods(ctx, mgr); err != nil {
		return nil, fmt.Errorf("indexing pods by node: %w", err)
	}
	var trunks *trunk.Controller
	pods := branch.New(mgr.GetClient(), ec2, store, rec, cfg.Clock, branch.Options{
		ClusterName: cfg.ClusterName, Cooldown: cfg.Cooldown, Identity: cfg.ControllerUsername,
		TrunkWanted: func(node string) { trunks.Want(node); nodeChanged(node) }})
	trunks = trunk.New(mgr.GetClient(), ec2, store, cfg.Limits, rec, cfg.Clock, changes,
		trunk.Options{ClusterName: cfg.ClusterName, Cooldown: cfg.Cooldown, Again: changes, Context: ctx, Ready: pods.TrunkReady})
	nodeOpts := opts
	nodeOpts.MaxConcurrentReconciles = cfg.NodeWorkers
	if err := trunks.Register(mgr, nodeOpts); err != nil {
		return nil, fmt.Errorf("registering the trunk controller: %w", err)
	}
	podOpts := opts
	podOpts.MaxConcurrentReconciles = cfg.PodWorkers
	if err := pods.Register(mgr, podOpts); err != nil {
		return nil, fmt.Errorf("registering the branch controller: %w", err)
	}
	// The groups updater, the policy status and the network policy check read every pod of a
	// namespace, or of the cluster: from the cache's indexer, uncopied.
	cachedPods, err := podcache.FromCache(ctx, mgr.GetCache())
	if err != nil {
		return nil, err
	}
	if err := branch.NewUpdater(mgr.GetClient(), ec2, store, rec).ReadPodsFrom(cachedPods).Register(mgr, opts); err != nil {
		return nil, fmt.Errorf("registering the groups updater: %w", err)
	}
	if err := registerPolicyReaders(mgr, ec2, rec, cfg, opts, cachedPods); err != nil {
		return nil, err
	}
	type runnable interface {
		Start(context.Context) error
		NeedLeaderElection() bool
	}
	releaser := branch.ReleaserOptions{Interval: cfg.ReleaseInterval, Reuse: !cfg.NoReuse, IdleTTL: cfg.IdleTTL}
	runnables := []runnable{branch.NewSweeper(mgr.GetClient(), ec2, store, cfg.Clock, cfg.SweepInterval, cfg.ClusterName)}
	if !cfg.NoReuse {
		// The EC2 client's budget, when it has one (the fake EC2 of tests has none).
		budget, _ := ec2.(warm.Budget)
		warmer := warm.New(mgr.GetClient(), ec2, budget, store, cfg.Clock, warm.Options{
			ClusterName: cfg.ClusterName, Default: cfg.WarmBranchesPerNode, Interval: cfg.WarmInterval})
		releaser.Targets = warmer
		runnables = append(runnables, warmer)
	}
	runnables = append(runnables, branch.NewReleaser(ec2, store, cfg.Clock, releaser))
	for _, r := range runnables {
		if err := mgr.Add(r); err != nil {
			return nil, fmt.Errorf("adding runnable: %w", err)
		}
	}
	return store, nil
}

// registerPolicyReaders registers the controllers that report on policies: the
// SecurityGroupPolicy status, and the network policy feedback (Warning events on policies
// that select nothing, name ports no pod declares, or that podsg-agent refuses; one writer:
// this controller's leader).
//
// The status and the network policy check read every pod of a namespace, or of the cluster,
// each second or two while pods change: from cachedPods, the cache's indexer, uncopied.
func registerPolicyReaders(mgr ctrl.Manager, ec2 EC2, rec events.EventRecorder, cfg Config, opts controller.Options,
	cachedPods podcache.Lister) error {
	status := policystatus.New(mgr.GetClient(), ec2, rec, policystatus.Options{
		VPCID: cfg.VPCID, SecurityGroupsPerENI: cfg.SecurityGroupsPerENI, Pods: cachedPods})
	if err := status.Register(mgr, opts); err != nil {
		return fmt.Errorf("registering the policy status controller: %w", err)
	}
	// Network policy feedback: Warning events on policies that select nothing, name ports no
	// pod declares, or that podsg-agent refuses. One writer: this controller's leader.
	served, err := netpolfeedback.ServedBy(mgr.GetRESTMapper())
	if err != nil {
		return err
	}
	if err := netpolfeedback.New(mgr.GetClient(), rec, served, netpolfeedback.Options{Pods: cachedPods}).Register(mgr, opts); err != nil {
		return fmt.Errorf("registering the network policy feedback: %w", err)
	}
	return nil
}
