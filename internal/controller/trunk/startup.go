package trunk

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
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
	ready     chan struct{} // made by the first reader, closed when the batch read ended
	expires   time.Time
	instances map[string]cloud.Instance           // by instance id
	branches  map[string][]cloud.NetworkInterface // cluster ENIs by their trunk tag
	assocs    map[string][]cloud.TrunkAssociation // by trunk id; only read trunks have an entry
	// wanted are the nodes pods wait on (Want): they do not wait for the batch, which pages
	// through every ENI of the cluster (half a minute at 1,700 nodes on a busy machine), but
	// read on their own, four describes each.
	wanted map[string]bool
	// alone are the instances read on their own while the batch was under way: the batch
	// drops them, so that nothing later adopts from a read older than what their node did.
	alone map[string]bool
	// done: the batch read ended. putOff are the nodes that came while it ran, with
	// Options.Again set: sent there when it ends, instead of holding a worker each meanwhile
	// (all of them, and a wanted node would find none free).
	done   bool
	putOff []string
}

// Want marks a node as one a pod waits on, until it has its trunk: if the start-up read is
// still under way, the node is read on its own instead of waiting for it.
func (c *Controller) Want(nodeName string) {
	s := &c.startup
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wanted == nil {
		s.wanted = map[string]bool{}
	}
	s.wanted[nodeName] = true
}

// startupInstance returns the node's instance from the start-up read, if it holds it, and
// forgets it. The first caller reads; the others wait for that read (or, with Options.Again,
// are put off until it ends: later is true), unless a pod waits on their node.
func (c *Controller) startupInstance(ctx context.Context, nodeName, id string) (inst cloud.Instance, batched, later bool) {
	s := &c.startup
	s.mu.Lock()
	first := s.ready == nil
	if first {
		s.ready = make(chan struct{})
	}
	ready, wanted := s.ready, s.wanted[nodeName]
	delete(s.wanted, nodeName) // asked once: adopted now, or read again on its own after a failure
	switch {
	case first, s.done:
	case wanted:
		// Read on its own: the batch is under way and a pod waits.
		if s.alone == nil {
			s.alone = map[string]bool{}
		}
		s.alone[id] = true
		s.mu.Unlock()
		return cloud.Instance{}, false, false
	case c.opts.Again != nil:
		s.putOff = append(s.putOff, nodeName)
		s.mu.Unlock()
		return cloud.Instance{}, false, true
	}
	s.mu.Unlock()
	if first {
		if err := c.readStartup(ctx); err != nil {
			// Nothing lost: every node reads on its own, as it would without the batch.
			logf.FromContext(ctx).Info("batched start-up read failed; reading node by node", "error", err.Error())
		}
		s.mu.Lock()
		s.done = true
		putOff := s.putOff
		s.putOff = nil
		s.mu.Unlock()
		close(ready)
		if len(putOff) > 0 {
			go c.again(ctx, putOff)
		}
	}
	select {
	case <-ready:
	case <-ctx.Done():
		return cloud.Instance{}, false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.clock.Now().After(s.expires) {
		s.instances, s.branches, s.assocs = nil, nil, nil
		return cloud.Instance{}, false, false
	}
	inst, batched = s.instances[id]
	delete(s.instances, id)
	return inst, batched, false
}

// again sends the nodes put off during the batch read to Options.Again, to be reconciled now.
func (c *Controller) again(ctx context.Context, nodes []string) {
	for _, n := range nodes {
		select {
		case c.opts.Again <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}}:
		case <-ctx.Done():
			return
		}
	}
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

// readStartup fills c.startup; called once, by the first node's reconcile, without its lock. The cluster's ENIs are read
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
	branches := map[string][]cloud.NetworkInterface{}
	for _, e := range enis {
		if t := e.Tags[cloud.TagTrunkENI]; t != "" {
			branches[t] = append(branches[t], e)
		}
	}
	s := &c.startup
	s.mu.Lock()
	for id := range s.alone {
		delete(instances, id)
	}
	s.alone = nil
	s.instances, s.assocs, s.branches = instances, assocs, branches
	s.expires = c.clock.Now().Add(startupTTL)
	s.mu.Unlock()
	logf.FromContext(ctx).Info("read the cluster's trunks in one batch", "nodes", len(ids), "instances", len(instances),
		"trunks", len(trunks), "enis", len(enis), "took", c.clock.Since(start).String())
	return nil
}
