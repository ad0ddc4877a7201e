package trunk

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
)

// startupTTL bounds how long the batched start-up read answers for a node: long enough to
// adopt thousands of nodes one reconcile after another, short enough that nothing adopted
// later relies on a read that old (a node that misses it is read on its own).
const startupTTL = 5 * time.Minute

// startup is what the trunk controller reads in one batch when it starts: the instances of
// every node that asked for a trunk, every ENI tagged for the cluster, and the associations of
// the trunks attached to those instances, each with filters and MaxResults pages. Adopting
// 1,700 nodes after a restart then costs a few dozen describe calls, where a read per node
// (instance, ENIs, associations) cost over 5,000 and, at EC2's describe rate, minutes. Each
// node's entry is used once, by its first ensureTrunk; the rest of the controller's life reads
// per node, as a node that joins later needs nothing of the others.
type startup struct {
	mu        sync.Mutex
	done      bool
	expires   time.Time
	instances map[string]cloud.Instance           // by instance id
	branches  map[string][]cloud.NetworkInterface // cluster ENIs by their trunk tag
	assocs    map[string][]cloud.TrunkAssociation // by trunk id; only read trunks have an entry
}

// instance returns the node's instance from the start-up read, if it holds it, and forgets it.
func (c *Controller) startupInstance(ctx context.Context, id string) (cloud.Instance, bool) {
	s := &c.startup
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.done = true
		if err := c.readStartup(ctx); err != nil {
			// Nothing lost: every node reads on its own, as it would without the batch.
			logf.FromContext(ctx).Info("batched start-up read failed; reading node by node", "error", err.Error())
		}
	}
	if c.clock.Now().After(s.expires) {
		s.instances, s.branches, s.assocs = nil, nil, nil
		return cloud.Instance{}, false
	}
	inst, ok := s.instances[id]
	delete(s.instances, id)
	return inst, ok
}

// startupBranches returns a trunk's associations and the cluster's ENIs tagged with it from
// the start-up read, if it read that trunk, and forgets them.
func (c *Controller) startupBranches(trunkID string) ([]cloud.TrunkAssociation, []cloud.NetworkInterface, bool) {
	s := &c.startup
	s.mu.Lock()
	defer s.mu.Unlock()
	assocs, ok := s.assocs[trunkID]
	if !ok || c.clock.Now().After(s.expires) {
		return nil, nil, false
	}
	enis := s.branches[trunkID]
	delete(s.assocs, trunkID)
	delete(s.branches, trunkID)
	return assocs, enis, true
}

// trunkNodeInstances returns the instance ids of the nodes that asked for a trunk.
func (c *Controller) trunkNodeInstances(ctx context.Context) ([]string, error) {
	var nodes corev1.NodeList
	if err := c.kube.List(ctx, &nodes); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	var ids []string
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if _, asked := n.Labels[v1beta1.LabelHasTrunkAttached]; !asked {
			continue
		}
		if id, err := cloud.InstanceID(n.Spec.ProviderID); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// readStartup fills c.startup; called with its lock held, once. The cluster's ENIs are read
// while the instances and then their trunks' associations are: the two reads page through
// tens of thousands of entries each at fleet size, and neither needs the other.
func (c *Controller) readStartup(ctx context.Context) error {
	ids, err := c.trunkNodeInstances(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	start := c.clock.Now()
	var enis []cloud.NetworkInterface
	g, gctx := errgroup.WithContext(ctx) // one read failing ends the other: the batch is dropped
	g.Go(func() error {
		var err error
		enis, err = c.ec2.DescribeNetworkInterfaces(gctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagCluster: c.opts.ClusterName}})
		if err != nil {
			return fmt.Errorf("describing the cluster's ENIs: %w", err)
		}
		return nil
	})
	instances := map[string]cloud.Instance{}
	assocs := map[string][]cloud.TrunkAssociation{}
	var trunks []string
	g.Go(func() error {
		insts, err := c.ec2.DescribeInstances(gctx, ids)
		if err != nil {
			return fmt.Errorf("describing %d instances: %w", len(ids), err)
		}
		for _, inst := range insts {
			instances[inst.ID] = inst
			for _, e := range inst.NetworkInterfaces {
				if e.Type == cloud.InterfaceTypeTrunk {
					trunks = append(trunks, e.ID)
					assocs[e.ID] = nil // read: none is an answer too
				}
			}
		}
		if len(trunks) == 0 {
			return nil
		}
		all, err := c.ec2.DescribeTrunkInterfaceAssociations(gctx, trunks...)
		if err != nil {
			return fmt.Errorf("describing the associations of %d trunks: %w", len(trunks), err)
		}
		for _, a := range all {
			assocs[a.TrunkID] = append(assocs[a.TrunkID], a)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	s := &c.startup
	s.instances, s.assocs = instances, assocs
	s.branches = map[string][]cloud.NetworkInterface{}
	for _, e := range enis {
		if t := e.Tags[cloud.TagTrunkENI]; t != "" {
			s.branches[t] = append(s.branches[t], e)
		}
	}
	s.expires = c.clock.Now().Add(startupTTL)
	logf.FromContext(ctx).Info("read the cluster's trunks in one batch", "nodes", len(ids), "instances", len(instances),
		"trunks", len(trunks), "enis", len(enis), "took", c.clock.Since(start).String())
	return nil
}
