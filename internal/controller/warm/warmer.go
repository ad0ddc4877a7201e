// Package warm keeps warm pools: on every trunk node, a SecurityGroupPolicy's number of idle
// branch ENIs carrying exactly its groups (spec.warmBranchesPerNode, or podsg-controller's
// default), made ahead of pods so that a pod given those groups starts with no EC2 call. The
// warmer spends only the EC2 request budget that pod work leaves: it asks the budget before
// each branch and its calls wait behind every pod's. It also tells the releaser which idle
// branches to keep past their idle TTL.
package warm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/branch"
	"github.com/podsg/podsg/internal/controller/inventory"
)

// +kubebuilder:rbac:groups=vpcresources.k8s.aws,resources=securitygrouppolicies,verbs=get;list;watch

// EC2 is what the warmer calls.
type EC2 interface {
	CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error)
	AssociateTrunkInterface(ctx context.Context, trunkID, branchID string, vlan int, clientToken string) (cloud.TrunkAssociation, error)
	ModifyNetworkInterfaceGroups(ctx context.Context, eniID string, groups []string) error
}

// Budget says whether a call of a purpose would be served now; nil means always.
type Budget interface {
	Spare(p cloud.Purpose) bool
}

// Options configure a Warmer.
type Options struct {
	ClusterName string
	// Default is the warm target of a policy that sets none (--warm-branches-per-node).
	Default int
	// Interval between two passes.
	Interval time.Duration
	// RetryAfter is how long a set of groups rests after a failure that retrying at once
	// would not cure (a missing group, a quota): warming never spends the budget on it.
	RetryAfter time.Duration
}

// Warmer keeps the warm pools. Safe for concurrent use.
type Warmer struct {
	kube   client.Reader
	ec2    EC2
	budget Budget
	store  *inventory.Store
	clock  clock.WithTicker
	opts   Options

	mu      sync.Mutex
	targets map[string]target    // by inventory.GroupsKey
	resting map[string]time.Time // groups that failed, until when
	seq     int64
}

type target struct {
	groups []string
	n      int
}

// New returns a Warmer.
func New(kube client.Reader, ec2 EC2, budget Budget, store *inventory.Store, clk clock.WithTicker, opts Options) *Warmer {
	if opts.Interval == 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = time.Minute
	}
	return &Warmer{kube: kube, ec2: ec2, budget: budget, store: store, clock: clk, opts: opts,
		targets: map[string]target{}, resting: map[string]time.Time{}}
}

// NeedLeaderElection: only the leader changes EC2.
func (w *Warmer) NeedLeaderElection() bool { return true }

// Start runs a pass every interval until ctx ends.
func (w *Warmer) Start(ctx context.Context) error {
	t := w.clock.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C():
			if err := w.Warm(ctx); err != nil {
				logf.FromContext(ctx).WithName("warmer").Info("warming failed; retrying next interval", "error", err.Error())
			}
		}
	}
}

// Target is the warm target of a set of groups (inventory.GroupsKey) on a node, as of the last
// pass: the releaser keeps that many idle branches past their idle TTL.
func (w *Warmer) Target(_, groups string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.targets[groups].n
}

// Warm runs one pass: for every trunk node and every policy's groups, it finishes the warm
// branches in flight and makes new ones up to the target, while the budget has spare calls.
func (w *Warmer) Warm(ctx context.Context) error {
	ctx = cloud.WithPurpose(ctx, cloud.PurposeWarm)
	targets, err := w.refresh(ctx)
	if err != nil {
		return err
	}
	keys := slices.Sorted(maps.Keys(targets))
	var errs []error
	for _, node := range w.store.Nodes() {
		t, ok := w.store.Trunk(node)
		if !ok {
			continue
		}
		for _, b := range w.store.Warming(node) {
			if !w.spare(GroupsKeyOf(b)) {
				continue
			}
			if err := w.finish(ctx, t, b); err != nil {
				errs = append(errs, err)
			}
		}
		keep := func(key string) int { return targets[key].n }
		for _, key := range keys {
			if err := w.fill(ctx, t, key, targets[key], keep); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// GroupsKeyOf is a branch's set of groups, as warm targets name them.
func GroupsKeyOf(b inventory.Branch) string { return inventory.GroupsKey(b.Groups) }

// fill makes warm branches of one set of groups on a node up to its target. When the trunk is
// full it repurposes idle branches of other groups above their target (keep): one call each.
func (w *Warmer) fill(ctx context.Context, t inventory.Trunk, key string, tg target, keep func(string) int) error {
	for w.store.Idle(t.Node, key) < tg.n {
		if !w.spare(key) {
			return nil
		}
		b, err := w.store.ReserveWarm(t.Node, tg.groups, w.token(t.ID))
		if errors.Is(err, inventory.ErrAtCapacity) {
			var ok bool
			if b, ok = w.store.Repurpose(t.Node, tg.groups, keep); !ok {
				return nil // the trunk is full of what pods and targets hold: pods come first
			}
			err = nil
		}
		if err != nil {
			return fmt.Errorf("reserving a warm branch on node %s: %w", t.Node, err)
		}
		if err := w.finish(ctx, t, b); err != nil {
			return err
		}
	}
	return nil
}

// token returns a ClientToken no other create used (EC2 allows 64 characters): a retry of
// the same warm branch reuses its reservation's.
func (w *Warmer) token(trunkID string) string {
	w.mu.Lock()
	w.seq++
	seq := w.seq
	w.mu.Unlock()
	return fmt.Sprintf("podsg-warm-%s-%s-%s", trunkID, strconv.FormatInt(w.clock.Now().UnixNano(), 36), strconv.FormatInt(seq, 36))
}

// spare reports whether warming may spend a call on a set of groups now.
func (w *Warmer) spare(key string) bool {
	w.mu.Lock()
	until, resting := w.resting[key]
	w.mu.Unlock()
	if resting && w.clock.Now().Before(until) {
		return false
	}
	return w.budget == nil || w.budget.Spare(cloud.PurposeWarm)
}

// finish creates and associates a warm branch, resuming where an earlier attempt stopped: the
// create carries the reservation's ClientToken, so a lost response finds the same ENI.
func (w *Warmer) finish(ctx context.Context, t inventory.Trunk, b inventory.Branch) error {
	if b.ENIID == "" {
		eni, err := w.ec2.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{
			SubnetID: t.SubnetID, Description: branch.BranchDescription, SecurityGroups: b.Groups, Type: cloud.InterfaceTypeBranch,
			ClientToken: b.Token,
			Tags:        map[string]string{cloud.TagCluster: w.opts.ClusterName, cloud.TagNode: t.Node, cloud.TagTrunkENI: t.ID},
		})
		if err != nil {
			if !transient(err) {
				w.store.Unwarm(t.Node, b.VLAN) // nothing was made
			}
			return w.failed(b, fmt.Errorf("creating a warm branch ENI with groups %v on node %s: %w", b.Groups, t.Node, err))
		}
		b.ENIID = eni.ID
		w.store.UpdateWarming(t.Node, b.VLAN, func(s *inventory.Branch) {
			s.ENIID, s.MAC, s.PrivateIP, s.Groups = eni.ID, eni.MAC, eni.PrivateIP, inventory.SortedGroups(eni.SecurityGroups)
		})
	}
	if b.Want != nil {
		if err := w.ec2.ModifyNetworkInterfaceGroups(ctx, b.ENIID, b.Want); err != nil {
			if !transient(err) {
				w.store.Unrepurpose(t.Node, b.VLAN, w.clock.Now())
			}
			return w.failed(inventory.Branch{Groups: b.Want}, fmt.Errorf("changing the groups of idle branch %s on node %s to %v for a warm pool: %w", b.ENIID, t.Node, b.Want, err))
		}
		w.store.UpdateWarming(t.Node, b.VLAN, func(s *inventory.Branch) { s.Groups, s.Want = s.Want, nil })
	}
	if b.AssociationID == "" {
		// The VLAN is in the token: a branch adopted after a restart may have been associated
		// before, on another VLAN, and EC2 refuses a token reused with other parameters.
		a, err := w.ec2.AssociateTrunkInterface(ctx, t.ID, b.ENIID, b.VLAN, fmt.Sprintf("podsg-warm-assoc-%s-%d", b.ENIID, b.VLAN))
		if err != nil {
			return w.failed(b, fmt.Errorf("associating warm branch %s with trunk %s: %w", b.ENIID, t.ID, err))
		}
		w.store.UpdateWarming(t.Node, b.VLAN, func(s *inventory.Branch) { s.AssociationID = a.ID })
	}
	w.store.WarmReady(t.Node, b.VLAN, w.clock.Now())
	warmed.Inc()
	return nil
}

// failed rests the branch's groups after a failure retrying at once would not cure.
func (w *Warmer) failed(b inventory.Branch, err error) error {
	if !transient(err) {
		w.mu.Lock()
		w.resting[GroupsKeyOf(b)] = w.clock.Now().Add(w.opts.RetryAfter)
		w.mu.Unlock()
	}
	return err
}

// transient: EC2 may well succeed on the next pass.
func transient(err error) bool {
	return !errors.Is(err, cloud.ErrNotFound) && !errors.Is(err, cloud.ErrInvalid) && !errors.Is(err, cloud.ErrQuota)
}

// refresh computes the targets from the policies: per set of groups, the largest target of
// the policies naming exactly it.
func (w *Warmer) refresh(ctx context.Context) (map[string]target, error) {
	var list v1beta1.SecurityGroupPolicyList
	if err := w.kube.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing SecurityGroupPolicies: %w", err)
	}
	targets := map[string]target{}
	for _, p := range list.Items {
		n := w.opts.Default
		if p.Spec.WarmBranchesPerNode != nil {
			n = int(*p.Spec.WarmBranchesPerNode)
		}
		key := inventory.GroupsKey(p.Spec.SecurityGroups.Groups)
		if n > 0 && n > targets[key].n {
			targets[key] = target{groups: inventory.SortedGroups(p.Spec.SecurityGroups.Groups), n: n}
		}
	}
	w.mu.Lock()
	w.targets = targets
	w.mu.Unlock()
	return targets, nil
}
