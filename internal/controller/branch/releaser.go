package branch

import (
	"context"
	"time"

	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
)

// Releaser deletes branch ENIs whose cool-down has ended, freeing their VLAN and capacity. A
// failed delete stays queued and is retried on the next tick; it is never dropped, since
// dropping it would leak both the ENI and the VLAN.
type Releaser struct {
	ec2      cloud.ENIFreer
	store    *inventory.Store
	clock    clock.WithTicker
	interval time.Duration
}

// NewReleaser returns a Releaser checking every interval of clk.
func NewReleaser(ec2 cloud.ENIFreer, store *inventory.Store, clk clock.WithTicker, interval time.Duration) *Releaser {
	return &Releaser{ec2: ec2, store: store, clock: clk, interval: interval}
}

// NeedLeaderElection: only the leader changes EC2.
func (r *Releaser) NeedLeaderElection() bool { return true }

// Start runs until ctx ends.
func (r *Releaser) Start(ctx context.Context) error {
	every(ctx, r.clock, r.interval, r.ReleaseDue)
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

// ReleaseDue deletes every branch whose cool-down has ended.
func (r *Releaser) ReleaseDue(ctx context.Context) {
	log := logf.FromContext(ctx).WithName("releaser")
	for _, b := range r.store.Due(r.clock.Now()) {
		if err := cloud.FreeENI(ctx, r.ec2, b.Ref()); err != nil {
			log.Info("deleting a cooled-down branch ENI failed; retrying", "eni", b.ENIID, "node", b.Node, "error", err.Error())
			continue
		}
		r.store.Drop(b.Node, b)
		log.V(1).Info("branch ENI released", "eni", b.ENIID, "vlan", b.VLAN, "node", b.Node)
	}
}
