package trunk

import (
	"context"
	"fmt"
	"slices"
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

// startupChunk is how many trunks one chunk of the start-up read covers: EC2 takes at most
// 200 values in a filter. startupReaders chunks are read at once.
const (
	startupChunk   = 200
	startupReaders = 3
)

// startup is what the trunk controller reads in one batch when it starts: the instances of
// every node that asked for a trunk, then, chunk by chunk of their trunks, the trunks'
// associations and the branch ENIs tagged with them, each with filters and MaxResults pages.
// Adopting 1,700 nodes after a restart then costs a few hundred describe pages, where a read
// per node (instance, ENIs, associations) cost over 5,000 requests and, at EC2's describe
// rate, minutes. A chunk's nodes are adopted as soon as it is read, while later chunks are
// still read: the adoption of the fleet overlaps the read instead of following it. Each
// node's entry is used once, by its first ensureTrunk; the rest of the controller's life reads
// per node, as a node that joins later needs nothing of the others.
type startup struct {
	mu      sync.Mutex
	started bool
	// done: the batch read ended; a node without an entry by then reads on its own.
	done bool
	// changed is closed (and replaced) when entries are published or the batch ends: the
	// callers that wait for their node's entry (without Options.Again) look again.
	changed chan struct{}
	// entries are the nodes' reads not used yet, by instance id.
	entries map[string]startupEntry
	// wanted are the nodes pods wait on (Want): they do not wait for their chunk, but read on
	// their own, four describes each.
	wanted map[string]bool
	// alone are the instances read on their own while the batch was under way (the batch's
	// entry for them is never used, so that nothing adopts from a read older than what their
	// node did), and those whose entry was used (a retry reads on its own).
	alone map[string]bool
	// putOff are the nodes (by instance id) that came before their entry was read, with
	// Options.Again set: sent there when it is, instead of holding a worker each meanwhile
	// (all of them, and a wanted node would find none free).
	putOff map[string]string
}

// startupEntry is one instance as the start-up read found it, with its trunk's associations
// and the branch ENIs tagged with its trunk (none when it has no trunk).
type startupEntry struct {
	inst     cloud.Instance
	assocs   []cloud.TrunkAssociation
	branches []cloud.NetworkInterface
	read     time.Time
}

// startupUse is how a node's ensureTrunk learns its instance at start.
type startupUse int

const (
	fromBatch   startupUse = iota // the entry of the start-up read
	readOwn                       // read on its own
	readWanted                    // read on its own, now: a pod waits (the batch is under way)
	putOffUntil                   // put off until its entry is read; sent to Options.Again then
)

// Want marks a node as one a pod waits on, until it has its trunk: if the start-up read has
// not reached it yet, the node is read on its own instead of waiting for it.
func (c *Controller) Want(nodeName string) {
	s := &c.startup
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wanted == nil {
		s.wanted = map[string]bool{}
	}
	s.wanted[nodeName] = true
}

// startupInstance returns the node's entry from the start-up read, if it holds one, and
// forgets it. The first caller starts the read (on Options.Context, which outlives the
// reconcile); a node whose entry is not read yet waits for it (or, with Options.Again set, is
// put off until it is read), unless a pod waits on it.
func (c *Controller) startupInstance(ctx context.Context, nodeName, id string) (startupEntry, startupUse) {
	s := &c.startup
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.started, s.changed = true, make(chan struct{})
		s.entries, s.alone, s.putOff = map[string]startupEntry{}, map[string]bool{}, map[string]string{}
		life := c.opts.Context
		if life == nil {
			life = ctx
		}
		go c.readStartup(life)
	}
	wanted := s.wanted[nodeName]
	delete(s.wanted, nodeName) // asked once: adopted now, or read again on its own after a failure
	for {
		if e, ok := s.entries[id]; ok && !s.alone[id] {
			delete(s.entries, id)
			s.alone[id] = true // used once: a retry after a failure reads on its own at once
			if c.clock.Since(e.read) > startupTTL {
				return startupEntry{}, readOwn
			}
			return e, fromBatch
		}
		switch {
		case s.done || s.alone[id]:
			return startupEntry{}, readOwn
		case wanted:
			s.alone[id] = true
			return startupEntry{}, readWanted
		case c.opts.Again != nil:
			s.putOff[id] = nodeName
			return startupEntry{}, putOffUntil
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			s.mu.Lock()
			return startupEntry{}, readOwn
		}
		s.mu.Lock()
	}
}

// publish makes entries usable and sends the nodes put off until then to Options.Again.
func (c *Controller) publish(ctx context.Context, entries map[string]startupEntry) {
	s := &c.startup
	s.mu.Lock()
	var again []string
	for id, e := range entries {
		s.entries[id] = e
		if n, ok := s.putOff[id]; ok {
			again = append(again, n)
			delete(s.putOff, id)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	c.again(ctx, again)
}

// again sends nodes to Options.Again, to be reconciled now.
func (c *Controller) again(ctx context.Context, nodes []string) {
	for _, n := range nodes {
		select {
		case c.opts.Again <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}}:
		case <-ctx.Done():
			return
		}
	}
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

// readStartup reads the batch and publishes it as it goes; started once, by the first node's
// reconcile. When it ends, failed or not, every node without an entry reads on its own:
// nothing is lost, the batch only saves requests.
func (c *Controller) readStartup(ctx context.Context) {
	ctx = cloud.WithPurpose(ctx, cloud.PurposeNode)
	log := logf.FromContext(ctx)
	start := c.clock.Now()
	nodes, trunks, enis, err := c.readStartupBatch(ctx)
	if err != nil {
		// Nothing lost: every node reads on its own, as it would without the batch.
		log.Info("batched start-up read failed; the nodes it did not reach read on their own", "error", err.Error())
	}
	s := &c.startup
	s.mu.Lock()
	s.done = true
	var again []string
	for _, n := range s.putOff {
		again = append(again, n)
	}
	s.putOff = map[string]string{}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	c.again(ctx, again)
	log.Info("read the cluster's trunks in one batch", "nodes", nodes, "trunks", trunks, "branchENIs", enis,
		"took", c.clock.Since(start).String())
}

// readStartupBatch reads the instances of the trunk nodes, publishes those without a trunk,
// then reads the trunks' associations and branches startupReaders chunks at once, publishing
// each chunk's instances when it is read. It returns how many nodes, trunks and branch ENIs
// it read.
func (c *Controller) readStartupBatch(ctx context.Context) (nodes, trunks, enis int, err error) {
	ids, err := c.trunkNodeInstances(ctx)
	if err != nil || len(ids) == 0 {
		return 0, 0, 0, err
	}
	read := c.clock.Now() // an entry is as old as its first read
	insts, err := c.ec2.DescribeInstances(ctx, ids)
	if err != nil {
		return len(ids), 0, 0, fmt.Errorf("describing %d instances: %w", len(ids), err)
	}
	bare := map[string]startupEntry{}
	byTrunk := map[string]cloud.Instance{}
	var trunkIDs []string
	for _, inst := range insts {
		i := slices.IndexFunc(inst.NetworkInterfaces, func(e cloud.NetworkInterface) bool { return e.Type == cloud.InterfaceTypeTrunk })
		if i < 0 {
			bare[inst.ID] = startupEntry{inst: inst, read: read}
			continue
		}
		t := inst.NetworkInterfaces[i].ID
		byTrunk[t] = inst
		trunkIDs = append(trunkIDs, t)
	}
	c.publish(ctx, bare)
	var mu sync.Mutex
	var g errgroup.Group // a chunk failing does not end the others: their nodes are adopted
	g.SetLimit(startupReaders)
	for chunk := range slices.Chunk(trunkIDs, startupChunk) {
		g.Go(func() error {
			entries, n, err := c.readTrunkChunk(ctx, chunk, byTrunk, read)
			if err != nil {
				return err
			}
			mu.Lock()
			enis += n
			mu.Unlock()
			c.publish(ctx, entries)
			return nil
		})
	}
	return len(ids), len(trunkIDs), enis, g.Wait()
}

// readTrunkChunk reads the associations of a chunk of trunks and the cluster's branch ENIs
// tagged with them, at once, and returns their instances' entries and how many ENIs it read.
func (c *Controller) readTrunkChunk(ctx context.Context, chunk []string, byTrunk map[string]cloud.Instance, read time.Time) (map[string]startupEntry, int, error) {
	var assocs []cloud.TrunkAssociation
	var enis []cloud.NetworkInterface
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		var err error
		if assocs, err = c.ec2.DescribeTrunkInterfaceAssociations(gctx, chunk...); err != nil {
			return fmt.Errorf("describing the associations of %d trunks: %w", len(chunk), err)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		enis, err = c.ec2.DescribeNetworkInterfaces(gctx, cloud.NetworkInterfaceFilter{
			Tags: map[string]string{cloud.TagCluster: c.opts.ClusterName}, TagsAnyOf: map[string][]string{cloud.TagTrunkENI: chunk}})
		if err != nil {
			return fmt.Errorf("describing the branch ENIs of %d trunks: %w", len(chunk), err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, 0, err
	}
	entries := make(map[string]startupEntry, len(chunk))
	for _, t := range chunk {
		inst := byTrunk[t]
		entries[inst.ID] = startupEntry{inst: inst, read: read}
	}
	for _, a := range assocs {
		if inst, ok := byTrunk[a.TrunkID]; ok {
			e := entries[inst.ID]
			e.assocs = append(e.assocs, a)
			entries[inst.ID] = e
		}
	}
	for _, b := range enis {
		if inst, ok := byTrunk[b.Tags[cloud.TagTrunkENI]]; ok {
			e := entries[inst.ID]
			e.branches = append(e.branches, b)
			entries[inst.ID] = e
		}
	}
	return entries, len(enis), nil
}
