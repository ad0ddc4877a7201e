package trunk_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/controller/inventory"
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
