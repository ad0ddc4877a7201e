package branch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/trunk"
)

// Sweeper deletes ENIs tagged for this cluster that nothing owns: branches that no trunk in
// memory holds, whose pod (by their tags) is gone or finished and that no live pod's pod-eni
// annotation names (a crash between create and associate, or before a cool-down ended; a
// parked or warm branch a crash left unassociated), trunks whose node is gone (deleted while
// podsg-controller was down, or created again under its name: trunk.OfNode) once they carry
// no branch. A reused branch keeps the tags of the pod it was made for: the annotation of the
// pod that has it now is what owns it. An ENI is deleted only when it was already an orphan on
// the previous sweep, so work in flight between two calls is never mistaken for a leak.
type Sweeper struct {
	kube        client.Reader
	ec2         EC2
	store       *inventory.Store
	clock       clock.WithTicker
	interval    time.Duration
	clusterName string
	seen        map[string]bool
}

// NewSweeper returns a Sweeper running every interval of clk.
func NewSweeper(kube client.Reader, ec2 EC2, store *inventory.Store, clk clock.WithTicker, interval time.Duration, clusterName string) *Sweeper {
	return &Sweeper{kube: kube, ec2: ec2, store: store, clock: clk, interval: interval, clusterName: clusterName, seen: map[string]bool{}}
}

// NeedLeaderElection: only the leader changes EC2.
func (s *Sweeper) NeedLeaderElection() bool { return true }

// Start runs until ctx ends.
func (s *Sweeper) Start(ctx context.Context) error {
	every(ctx, s.clock, s.interval, func(ctx context.Context) {
		if err := s.Sweep(ctx); err != nil {
			logf.FromContext(ctx).WithName("sweeper").Info("sweep failed; retrying next interval", "error", err.Error())
		}
	})
	return nil
}

// Sweep runs one pass.
func (s *Sweeper) Sweep(ctx context.Context) error {
	enis, err := s.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagCluster: s.clusterName}})
	if err != nil {
		return fmt.Errorf("describing the cluster's ENIs: %w", err)
	}
	// Branches first: a trunk can go only once its branches have, in the same pass.
	slices.SortStableFunc(enis, func(a, b cloud.NetworkInterface) int { return trunkLast(a) - trunkLast(b) })
	log := logf.FromContext(ctx).WithName("sweeper")
	ctx = cloud.WithPurpose(ctx, cloud.PurposeCleanup)
	orphans := map[string]bool{}
	var annotated map[string]bool
	for _, e := range enis {
		// Only trunks and branches are podsg-controller's: other ENIs may carry the cluster's
		// tag too (the local cluster's API server ENI, the node agent's pool ENIs) and are
		// never the sweeper's to delete. A branch carries its pod's tags from creation.
		if e.Type != cloud.InterfaceTypeTrunk && e.Tags[cloud.TagPodName] == "" {
			continue
		}
		owned, err := s.owned(ctx, e, &annotated)
		if err != nil {
			return err
		}
		if owned {
			continue
		}
		orphans[e.ID] = true
		if !s.seen[e.ID] {
			continue
		}
		if err := s.delete(ctx, e); err != nil {
			if errors.Is(err, errTrunkInUse) {
				log.V(1).Info("orphan trunk still carries branches; kept", "eni", e.ID, "node", e.Tags[cloud.TagNode])
			} else {
				log.Info("deleting an orphan ENI failed", "eni", e.ID, "error", err.Error())
			}
			continue
		}
		orphansDeleted.Inc()
		delete(orphans, e.ID)
	}
	s.seen = orphans
	return nil
}

func trunkLast(e cloud.NetworkInterface) int {
	if e.Type == cloud.InterfaceTypeTrunk {
		return 1
	}
	return 0
}

// owned reports whether something owns e. annotated, the ENIs live pods are annotated with,
// is listed the first time a branch needs it, once per pass.
func (s *Sweeper) owned(ctx context.Context, e cloud.NetworkInterface, annotated *map[string]bool) (bool, error) {
	if s.store.Known(e.ID) {
		return true, nil
	}
	if e.Type == cloud.InterfaceTypeTrunk {
		// A node of the trunk's name may be a new one, created again under that name.
		n := &corev1.Node{}
		ok, err := s.exists(ctx, n, types.NamespacedName{Name: e.Tags[cloud.TagNode]}, "")
		return ok && trunk.OfNode(e, n), err
	}
	key := types.NamespacedName{Namespace: e.Tags[cloud.TagNamespace], Name: e.Tags[cloud.TagPodName]}
	pod := &corev1.Pod{}
	ok, err := s.exists(ctx, pod, key, types.UID(e.Tags[cloud.TagPodUID]))
	if err != nil {
		return false, err
	}
	// A finished pod owns nothing, as for the trunk controller (trunk.TagOwner): it never runs
	// again, and the branch controller frees only the ENIs the store holds, so an ENI of a
	// finished pod that the store does not hold (never associated) is the sweeper's to free.
	if ok && trunk.TagOwner(pod, e.ID) {
		return true, nil
	}
	if *annotated == nil {
		if *annotated, err = trunk.AnnotatedENIs(ctx, s.kube); err != nil {
			return false, err
		}
	}
	return (*annotated)[e.ID], nil
}

// exists reports whether obj exists under key (and has uid, when given).
func (s *Sweeper) exists(ctx context.Context, obj client.Object, key types.NamespacedName, uid types.UID) (bool, error) {
	if key.Name == "" {
		return false, nil
	}
	if err := s.kube.Get(ctx, key, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("getting owner %s: %w", key, err)
	}
	return uid == "" || obj.GetUID() == uid, nil
}

// errTrunkInUse: an orphan trunk still carries branches, of pods that still exist (their node
// was deleted before them) or not podsg's. Detaching it would cut those pods off; it waits.
var errTrunkInUse = errors.New("trunk still carries branch ENIs")

// delete frees an orphan as node teardown does (cloud.FreeENI): a branch is disassociated,
// then deleted; a trunk, once it carries no branch, is detached, then deleted.
func (s *Sweeper) delete(ctx context.Context, e cloud.NetworkInterface) error {
	ref := cloud.ENIRef{ID: e.ID, AttachmentID: e.AttachmentID}
	trunkID := e.Tags[cloud.TagTrunkENI]
	if e.Type == cloud.InterfaceTypeTrunk {
		trunkID = e.ID
	}
	if trunkID != "" {
		assocs, err := s.ec2.DescribeTrunkInterfaceAssociations(ctx, trunkID)
		if cloud.IgnoreNotFound(err) != nil {
			return fmt.Errorf("describing associations of trunk %s: %w", trunkID, err)
		}
		if e.Type == cloud.InterfaceTypeTrunk && len(assocs) > 0 {
			return fmt.Errorf("%w: %s carries %d", errTrunkInUse, e.ID, len(assocs))
		}
		if i := slices.IndexFunc(assocs, func(a cloud.TrunkAssociation) bool { return a.BranchID == e.ID }); i >= 0 {
			ref.AssociationID = assocs[i].ID
		}
	}
	return cloud.FreeENI(ctx, s.ec2, ref)
}
