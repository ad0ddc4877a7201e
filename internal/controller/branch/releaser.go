package branch

import (
	"context"
	"time"

	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
)

// Releaser ends cool-downs. With reuse, a branch whose cool-down has ended is parked: it stays
// associated with its trunk, with its groups, free for the next pod of its node, and is
// deleted only once it has been idle for the idle TTL beyond its groups' warm target. Without
// reuse it is deleted at once, freeing its VLAN and capacity. A failed delete stays queued
// and is retried on the next tick; it is never dropped, since dropping it would leak both the
// ENI and the VLAN.
type Releaser struct {
	ec2   cloud.ENIFreer
	store *inventory.Store
	clock clock.WithTicker
	opts  ReleaserOptions
}

// ReleaserOptions configure a Releaser.
type ReleaserOptions struct {
	// Interval between two passes.
	Interval time.Duration
	// Reuse parks cooled-down branches instead of deleting them.
	Reuse bool
	// IdleTTL is how long an idle branch beyond its warm target is kept.
	IdleTTL time.Duration
	// Targets gives the warm target of a set of groups on a node; nil keeps none.
	Targets Targets
}

// Targets says how many idle branches of a set of groups (inventory.GroupsKey) a node keeps.
type Targets interface {
	Target(node, groups string) int
}

// NewReleaser returns a Releaser.
func NewReleaser(ec2 cloud.ENIFreer, store *inventory.Store, clk clock.WithTicker, opts ReleaserOptions) *Releaser {
	return &Releaser{ec2: ec2, store: store, clock: clk, opts: opts}
}

// NeedLeaderElection: only the leader changes EC2.
func (r *Releaser) NeedLeaderElection() bool { return true }

// Start runs until ctx ends.
func (r *Releaser) Start(ctx context.Context) error {
	every(ctx, r.clock, r.opts.Interval, r.ReleaseDue)
	return nil
}

// every calls fn every interval of clk until ctx ends.
func every(ctx context.Context, clk clock.WithTicker, interval time.Duration, fn func(context.Context)) {
	t := clk.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			fn(ctx)
		}
	}
}

// ReleaseDue parks (or deletes) every branch whose cool-down has ended, and deletes the idle
// ones past their TTL.
func (r *Releaser) ReleaseDue(ctx context.Context) {
	log := logf.FromContext(ctx).WithName("releaser")
	ctx = cloud.WithPurpose(ctx, cloud.PurposeCleanup)
	now := r.clock.Now()
	if r.opts.Reuse {
		keep := func(string, string) int { return 0 }
		if r.opts.Targets != nil {
			keep = r.opts.Targets.Target
		}
		for _, b := range r.store.Expire(now, r.opts.IdleTTL, keep) {
			log.V(1).Info("idle branch ENI past its TTL", "eni", b.ENIID, "vlan", b.VLAN, "node", b.Node)
		}
	}
	for _, b := range r.store.Due(now) {
		if r.opts.Reuse && !b.Free && r.store.Park(b.Node, b.ENIID, now) {
			log.V(1).Info("branch ENI parked", "eni", b.ENIID, "vlan", b.VLAN, "node", b.Node, "groups", b.Groups)
			continue
		}
		if err := cloud.FreeENI(ctx, r.ec2, b.Ref()); err != nil {
			log.Info("deleting a cooled-down branch ENI failed; retrying", "eni", b.ENIID, "node", b.Node, "error", err.Error())
			continue
		}
		r.store.Drop(b.Node, b)
		log.V(1).Info("branch ENI released", "eni", b.ENIID, "vlan", b.VLAN, "node", b.Node)
	}
}
