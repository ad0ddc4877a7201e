package controller_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// scaleSize reads a size knob of the scale benchmarks.
func scaleSize(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// startProfiles records CPU, block and mutex profiles of restart n into $PODSG_SCALE_PROFILE
// (a directory), when set: the restart alone, not the seeding before it. Read them with
// go tool pprof FILE. The returned func stops them and writes the files.
func startProfiles(b *testing.B, n int) func() {
	dir := os.Getenv("PODSG_SCALE_PROFILE")
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	cpu, err := os.Create(filepath.Join(dir, fmt.Sprintf("restart-%d.cpu.pprof", n)))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		b.Fatal(err)
	}
	runtime.SetBlockProfileRate(int(time.Millisecond)) // one sample per ms blocked
	runtime.SetMutexProfileFraction(10)
	return func() {
		pprof.StopCPUProfile()
		if err := cpu.Close(); err != nil {
			b.Error(err)
		}
		for _, name := range []string{"block", "mutex"} {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("restart-%d.%s.pprof", n, name)))
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
				b.Error(err)
			}
			if err := f.Close(); err != nil {
				b.Error(err)
			}
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}
}

// logAdoption logs, while a restart runs, when the inventory first holds first's trunk and
// when it holds a quarter, half, three quarters and all of the fleet's: where a restart's
// time goes, not a measurement (those are the reported metrics).
func logAdoption(b *testing.B, m *runningManager, first string, nodes int, start time.Time) func() {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		firstSeen, next := false, 1
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if _, ok := m.store.Trunk(first); ok && !firstSeen {
				firstSeen = true
				b.Logf("%.1f s: %s adopted", time.Since(start).Seconds(), first)
			}
			for n := len(m.store.Nodes()); next <= 4 && n >= nodes*next/4; next++ {
				b.Logf("%.1f s: %d of %d nodes adopted", time.Since(start).Seconds(), n, nodes)
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// reconcileTotals returns controller-runtime's count of reconciles by controller, in this
// process so far.
func reconcileTotals(b *testing.B) map[string]float64 {
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

// BenchmarkScaleControllerRestart restarts podsg-controller over a fleet of simulated trunk nodes
// (PODSG_SCALE_NODES, default 200; issue 15's size is 1,700) with PODSG_SCALE_PODS_PER_NODE
// (20) branch pods each: a real apiserver, the local VPC with EC2's throttling profile holding
// the trunks and branches (seeded through its state layer), the production EC2 client and
// budget. The pods are bound and annotated with their branches, as a running controller left
// them. One op: a new incarnation starts (a manager on a fresh inventory, as a process after
// kill -9) while a new SG pod waits on the first node. It reports
//   - s-to-alloc: start → the new pod annotated with a branch;
//   - s-to-exact: start → the capacity view exact: every node's in-use count in the
//     controller's inventory equals the branch associations EC2 holds on its trunk;
//   - describes: the DescribeX requests the local VPC answered in that time.
//
// The cache sync of every pod and node is part of the restart.
func BenchmarkScaleControllerRestart(b *testing.B) {
	nodes := scaleSize(b, "PODSG_SCALE_NODES", 200)
	perNode := scaleSize(b, "PODSG_SCALE_PODS_PER_NODE", 20)
	ctx := b.Context()
	env := testenv.Start(b, testenv.Options{}) // no webhooks: the seeded pods carry pod-eni
	profile, err := server.LoadProfile("aws")
	if err != nil {
		b.Fatal(err)
	}
	w := &world{env: env, c: env.Client, opts: options{backend: backendVPC}}
	w.vpc = vpctest.Start(b, vpctest.Options{Profile: profile})
	pumpClock(b, w.vpc.Clock)
	w.api = newVPCClient(b, w.vpc.URL, false, nil)
	nodeName := func(i int) string { return fmt.Sprintf("sim-%04d", i) }
	podName := func(node, i int) string { return fmt.Sprintf("p-%04d-%02d", node, i) }
	const ns = "scale"
	seedStart := time.Now()
	fleet, err := vpctest.SeedFleet(ctx, w.vpc.Store, vpctest.FleetSpec{
		Nodes: nodes, BranchesPerNode: perNode, InstanceType: "m5.4xlarge",
		TrunkTags: func(i int, _ string) state.Tags {
			return state.Tags{cloud.TagCluster: cluster, cloud.TagNode: nodeName(i)}
		},
		BranchTags: func(i int, trunk string, vlan int) state.Tags {
			return state.Tags{cloud.TagCluster: cluster, cloud.TagTrunkENI: trunk, cloud.TagNode: nodeName(i),
				cloud.TagNamespace: ns, cloud.TagPodName: podName(i, vlan)}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	controllertest.Namespace(b, w.c, ns)
	groups := fleet[0].Branches[0].Groups
	const branchLimit = 54 // EC2's branch limit for m5.4xlarge, whatever the built-in table says
	tab := limits.MustDefault()
	tab.Set("m5.4xlarge", branchLimit)
	var g errgroup.Group
	g.SetLimit(16)
	for _, n := range fleet {
		g.Go(func() error {
			// The capacity the previous incarnation advertised: no branch cools down.
			if _, err := controllertest.SimulatedNode(ctx, w.c, nodeName(n.Index), w.vpc.Store.Region()+"a", n.Instance, true, branchLimit); err != nil {
				return err
			}
			for _, br := range n.Branches {
				p, err := controllertest.BranchPod(ns, podName(n.Index, br.VLAN), nodeName(n.Index), groups, &v1beta1.PodENI{
					ENIID: br.ENI, IfAddress: br.MAC, PrivateIP: br.IP, VLANID: br.VLAN, SubnetCIDR: n.SubnetCIDR,
					AssociationID: br.Association})
				if err != nil {
					return err
				}
				if err := w.c.Create(ctx, p); err != nil {
					return fmt.Errorf("creating pod %s: %w", p.Name, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d nodes, %d branch pods in %s", nodes, nodes*perNode, time.Since(seedStart).Round(time.Second))
	w.cfg = controller.Config{ClusterName: cluster, VPCID: fleet[0].VPC, Limits: tab, Clock: clock.RealClock{},
		SweepInterval: time.Hour}
	describes := func() float64 {
		n := 0.0
		for action, codes := range vpcRequests(b, w) {
			if strings.HasPrefix(action, "Describe") {
				for _, v := range codes {
					n += v
				}
			}
		}
		return n
	}
	// exact: every node's in-use count is what EC2 has on its trunk.
	exact := func(m *runningManager) error {
		var wrong []string
		err := w.vpc.Store.View(func(tx *state.Tx) error {
			for _, n := range fleet {
				want, _ := tx.AssociationsOfTrunk(n.Trunk)
				if u, ok := m.store.Usage(nodeName(n.Index)); !ok || u.InUse != want {
					wrong = append(wrong, fmt.Sprintf("%s: %d of %d", nodeName(n.Index), u.InUse, want))
				}
			}
			return nil
		})
		if err != nil || len(wrong) > 0 {
			return errors.Join(err, fmt.Errorf("%d nodes not exact yet, e.g. %s", len(wrong), wrong[0]))
		}
		return nil
	}
	var toAlloc, toExact, calls float64
	restarts := 0
	for b.Loop() {
		newPod, err := controllertest.BranchPod(ns, fmt.Sprint("new-", restarts), nodeName(0), groups, nil)
		if err != nil {
			b.Fatal(err)
		}
		controllertest.Create(b, w.c, newPod)
		before := describes()
		stopProfiles := startProfiles(b, restarts)
		start := time.Now()
		m := w.startManager(b, func(context.CancelFunc) controller.EC2 { return w.api })
		b.Logf("restart %d: caches synced after %.1f s", restarts, time.Since(start).Seconds())
		stopTimeline := logAdoption(b, m, nodeName(0), nodes, start)
		testenv.Eventually(b, 10*time.Minute, func(ctx context.Context) error {
			p := &corev1.Pod{}
			if err := w.c.Get(ctx, types.NamespacedName{Namespace: ns, Name: newPod.Name}, p); err != nil {
				return err
			}
			if p.Annotations[v1beta1.AnnotationPodENI] == "" {
				return errors.New("the new pod has no branch yet")
			}
			return nil
		})
		toAlloc += time.Since(start).Seconds()
		testenv.Eventually(b, 10*time.Minute, func(context.Context) error { return exact(m) })
		toExact += time.Since(start).Seconds()
		calls += describes() - before
		stopTimeline()
		stopProfiles()
		b.Logf("restart %d: reconciles so far %v", restarts, reconcileTotals(b))
		m.stop(b)
		restarts++
	}
	b.ReportMetric(toAlloc/float64(restarts), "s-to-alloc")
	b.ReportMetric(toExact/float64(restarts), "s-to-exact")
	b.ReportMetric(calls/float64(restarts), "describes")
}
