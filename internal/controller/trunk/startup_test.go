package trunk_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/controller/worldtest"
)

// TestRestartReadsDoNotGrowWithNodes restarts the controller over fleets of 3 and 30 nodes
// with 2 branch pods each, adopts every node and sweeps once, and counts the describe calls
// the new incarnation made: the same for both fleets (the reads are batched by filter; the
// real client pages them with MaxResults, which internal/cloud/ec2 does), and every node's
// in-use count is its pods', as EC2 has them.
func TestRestartReadsDoNotGrowWithNodes(t *testing.T) {
	calls := map[int]map[string]int{}
	for _, nodes := range []int{3, 30} {
		w := worldtest.New(t)
		for i := range nodes {
			node := fmt.Sprint("n", i)
			w.AddNode(node)
			w.AddPod(node+"-a", node)
			w.AddPod(node+"-b", node)
		}
		before := len(w.EC2.CallLog())
		w.Restart()
		for i := range nodes {
			w.ReconcileNode(fmt.Sprint("n", i))
		}
		w.Sweep()
		got := map[string]int{}
		for _, c := range w.EC2.CallLog()[before:] {
			if !strings.HasPrefix(c.Action, "Describe") {
				t.Errorf("%d nodes: the restart made a mutating call, %s", nodes, c.Action)
			}
			got[c.Action]++
		}
		for i := range nodes {
			node := fmt.Sprint("n", i)
			if u, _ := w.Store.Usage(node); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 2}) {
				t.Errorf("%d nodes: %s after the restart: %+v, want its 2 pods in use", nodes, node, u)
			}
		}
		calls[nodes] = got
	}
	if !maps.Equal(calls[3], calls[30]) {
		t.Fatalf("describe calls per restart grow with nodes: 3 nodes %v, 30 nodes %v", calls[3], calls[30])
	}
	total := 0
	for _, n := range calls[30] {
		total += n
	}
	// One batched read each of instances, the cluster's ENIs, the trunks' associations and
	// the subnet at start, one of the cluster's ENIs per sweep.
	if total > 5 {
		t.Fatalf("%d describe calls per restart, want at most 5: %v", total, calls[30])
	}
	t.Logf("describe calls per restart: %v (%v)", calls[30], slices.Sorted(maps.Keys(calls[30])))
}

// TestConcurrentReconcilesAdoptAndCreateOnce runs the trunk controller's reconciles of many
// nodes at once, as its worker pool does: after a restart, 20 nodes with 2 pods each are
// adopted while 10 new nodes get their first trunk, every node reconciled twice (its capacity
// change enqueues it again; never by two workers at once, as in controller-runtime's queue) by 8
// workers. Every node ends with exactly one trunk, on its
// instance, the adopted ones with their pods' branches in use and nothing else; the only
// mutating calls are the new trunks' create and attach, once each; and the adoption still
// reads in one batch.
func TestConcurrentReconcilesAdoptAndCreateOnce(t *testing.T) {
	const adopted, fresh, workers = 20, 10, 8
	w := worldtest.New(t)
	var names []string
	for i := range adopted {
		node := fmt.Sprint("old-", i)
		w.AddNode(node)
		w.AddPod(node+"-a", node)
		w.AddPod(node+"-b", node)
		names = append(names, node)
	}
	for i := range fresh {
		node := fmt.Sprint("new-", i)
		w.NewNode(node, worldtest.InstanceType)
		names = append(names, node)
	}
	branchesBefore := len(w.EC2.NetworkInterfaces(cloud.InterfaceTypeBranch))
	before := len(w.EC2.CallLog())
	w.Restart()

	// Two rounds, as the queue never hands one node to two workers at once.
	errs := make(chan error, 2*len(names))
	for range 2 {
		queue := make(chan string, len(names))
		for _, n := range names {
			queue <- n
		}
		close(queue)
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for n := range queue {
					if err := w.TryReconcileNode(n); err != nil {
						errs <- fmt.Errorf("node %s: %w", n, err)
					}
				}
			})
		}
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	trunks := map[string]int{}
	for _, e := range w.EC2.NetworkInterfaces(cloud.InterfaceTypeTrunk) {
		trunks[e.Tags[cloud.TagNode]]++
	}
	for _, n := range names {
		if trunks[n] != 1 {
			t.Errorf("node %s has %d trunk ENIs in EC2, want 1", n, trunks[n])
		}
		tr, ok := w.Store.Trunk(n)
		if !ok {
			t.Errorf("node %s has no trunk in the inventory", n)
			continue
		}
		if inst, _ := cloud.InstanceID(w.Node(n).Spec.ProviderID); w.TrunkOf(n).InstanceID != inst || tr.InstanceID != inst {
			t.Errorf("node %s: trunk on %s (inventory %s), want its instance %s", n, w.TrunkOf(n).InstanceID, tr.InstanceID, inst)
		}
		want := inventory.Usage{Limit: worldtest.BranchLimit}
		if strings.HasPrefix(n, "old-") {
			want.InUse = 2
		}
		if u, _ := w.Store.Usage(n); u != want {
			t.Errorf("node %s: %+v, want %+v", n, u, want)
		}
	}
	if got := len(w.EC2.NetworkInterfaces(cloud.InterfaceTypeBranch)); got != branchesBefore {
		t.Errorf("%d branch ENIs after the restart, want the %d there were", got, branchesBefore)
	}
	calls := map[string]int{}
	for _, c := range w.EC2.CallLog()[before:] {
		calls[c.Action]++
	}
	for action, n := range calls {
		switch {
		case action == "CreateNetworkInterface" || action == "AttachNetworkInterface":
			if n != fresh {
				t.Errorf("%d %s calls, want one per new node (%d)", n, action, fresh)
			}
		case !strings.HasPrefix(action, "Describe"):
			t.Errorf("%d %s calls: the restart made a mutating call besides the new trunks", n, action)
		}
	}
	// One batched read of the instances, the ENIs and the associations for all 30; the new
	// nodes' trunks are created, not read again.
	if calls["DescribeInstances"] != 1 || calls["DescribeInstance"] != 0 {
		t.Errorf("instances read %d times in a batch and %d one by one, want once in a batch: %v",
			calls["DescribeInstances"], calls["DescribeInstance"], calls)
	}
}

// gatedEC2 holds the start-up read of the branch ENIs (a filter on the cluster tag and on
// several trunks) until gate closes, telling entered when it starts.
type gatedEC2 struct {
	*fake.EC2
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedEC2) DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error) {
	if len(f.TagsAnyOf) > 0 {
		close(g.entered)
		<-g.gate
	}
	return g.EC2.DescribeNetworkInterfaces(ctx, f)
}

// TestWantedNodeDoesNotWaitForTheBatch: after a restart, the first node's reconcile starts
// the batched read of the whole cluster, on the controller's context, and is put off until it
// ends, as is a node nobody waits on: neither holds a worker, both are sent to Options.Again
// when the batch has read them, and adopted from it. A node a pod waits on (Want) is adopted
// meanwhile from reads of its own, exactly.
func TestWantedNodeDoesNotWaitForTheBatch(t *testing.T) {
	w := worldtest.New(t)
	for _, n := range []string{"wanted", "first", "other"} {
		w.AddNode(n)
		w.AddPod(n+"-a", n)
		w.AddPod(n+"-b", n)
	}
	w.Restart()
	tab := limits.MustDefault()
	tab.Set(worldtest.InstanceType, worldtest.BranchLimit)
	ec2 := &gatedEC2{EC2: w.EC2, entered: make(chan struct{}), gate: make(chan struct{})}
	again := make(chan event.GenericEvent, 3)
	life, endLife := context.WithCancel(t.Context())
	defer endLife()
	ctl := trunk.New(w.Kube, ec2, w.Store, tab, events.NewFakeRecorder(100), w.Clock, nil,
		trunk.Options{ClusterName: worldtest.Cluster, Cooldown: worldtest.Cooldown, Again: again, Context: life})
	reconcile := func(node string) error {
		// A reconcile's context ends with it: the batch it starts must not.
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		_, err := ctl.Reconcile(ctx, reconcile.Request{NamespacedName: types.NamespacedName{Name: node}})
		return err
	}
	// The fake counts DescribeInstance and DescribeInstances as one action.
	before := w.EC2.Calls(fake.ActionDescribeInstance)
	if err := reconcile("first"); err != nil {
		t.Fatal(err)
	}
	<-ec2.entered // the batch is under way, and stays so until the gate opens
	if _, ok := w.Store.Trunk("first"); ok {
		t.Fatal("the node that started the batch is adopted before the batch read it")
	}

	ctl.Want("wanted")
	if err := reconcile("wanted"); err != nil {
		t.Fatal(err)
	}
	if u, _ := w.Store.Usage("wanted"); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 2}) {
		t.Fatalf("the wanted node while the batch is under way: %+v, want its 2 pods in use", u)
	}
	if err := reconcile("other"); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Store.Trunk("other"); ok {
		t.Fatal("a node nobody waits on is adopted before the batch read it, from reads of its own")
	}

	close(ec2.gate)
	sent := []string{(<-again).Object.GetName(), (<-again).Object.GetName()}
	slices.Sort(sent)
	if !slices.Equal(sent, []string{"first", "other"}) {
		t.Fatalf("%v sent again once the batch read them, want first and other", sent)
	}
	for _, n := range sent {
		if err := reconcile(n); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"wanted", "first", "other"} {
		if u, _ := w.Store.Usage(n); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 2}) {
			t.Errorf("node %s: %+v, want its 2 pods in use", n, u)
		}
	}
	if got := w.EC2.Calls(fake.ActionDescribeInstance) - before; got != 2 {
		t.Fatalf("%d instance reads, want 2: the batch and the wanted node's own; the others come from the batch", got)
	}
	select {
	case ev := <-again:
		t.Fatalf("%s sent again a second time", ev.Object.GetName())
	default:
	}
}

// TestStartupReadInChunks: a restart over more trunks than one filter takes (200 values)
// reads their associations and branches chunk by chunk, two describes a chunk and none per
// node, and adopts every node exactly, each from its own chunk.
func TestStartupReadInChunks(t *testing.T) {
	const nodes = 201 // two chunks
	w := worldtest.New(t)
	for i := range nodes {
		node := fmt.Sprint("n", i)
		w.AddNode(node)
		w.AddPod(node+"-a", node)
	}
	before := len(w.EC2.CallLog())
	w.Restart()
	for i := range nodes {
		w.ReconcileNode(fmt.Sprint("n", i))
	}
	calls := map[string]int{}
	for _, c := range w.EC2.CallLog()[before:] {
		calls[c.Action]++
	}
	want := map[string]int{fake.ActionDescribeInstance: 1, fake.ActionDescribeSubnet: 1,
		fake.ActionDescribeTrunkInterfaceAssociations: 2, fake.ActionDescribeNetworkInterfaces: 2}
	if !maps.Equal(calls, want) {
		t.Errorf("calls of the restart: %v, want %v", calls, want)
	}
	for i := range nodes {
		node := fmt.Sprint("n", i)
		if u, _ := w.Store.Usage(node); u != (inventory.Usage{Limit: worldtest.BranchLimit, InUse: 1}) {
			t.Errorf("%s after the restart: %+v, want its pod in use", node, u)
		}
	}
}
