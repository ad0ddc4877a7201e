package controller_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/server"
)

// mutatingActions are the EC2 mutations podsg-controller makes.
var mutatingActions = []string{"CreateNetworkInterface", "DeleteNetworkInterface", "AttachNetworkInterface",
	"DetachNetworkInterface", "AssociateTrunkInterface", "DisassociateTrunkInterface", "CreateTags",
	"ModifyNetworkInterfaceAttribute"}

// BenchmarkAllocation measures podsg-controller against EC2's documented throttling (the local
// VPC's aws profile) with the production EC2 client and budget (DefaultEC2Budget: 4 mutating
// calls/s, a burst of 40), on 10 nodes (PODSG_BENCH_NODES) and the real scheduler, twice: with
// branch reuse (podsg's default) and without it (--branch-reuse=false, AWS's create-per-pod
// path), each on a fresh control plane and VPC, and prints every figure side by side:
//
//   - cold: a burst of 1,000 pods (PODSG_BENCH_PODS) of groups no node has seen; its pace
//     against what the budget allows (2 calls per pod);
//   - release: the cost of those pods going (parked, or disassociated and deleted);
//   - seen: the same burst again, once their branches are parked (without reuse: a cold burst);
//   - rolling: a 500-pod Deployment (PODSG_BENCH_DEPLOYMENT) replaced with maxSurge 25%,
//     the replaced pods' release included;
//   - warm: two pods per node, one at a time, each with a warm branch waiting (without reuse:
//     none can);
//   - no warm: 20 pods one at a time of groups with no idle branch of their own;
//   - live: the Deployment's policy changes its groups (updatePolicy InPlace) and every
//     running pod's branch follows (without reuse compared with recreating the pods: rolling).
func BenchmarkAllocation(b *testing.B) {
	cfg := benchConfig{pods: envInt(b, "PODSG_BENCH_PODS", 1000), deployment: envInt(b, "PODSG_BENCH_DEPLOYMENT", 500),
		nodes: envInt(b, "PODSG_BENCH_NODES", 10), sequential: 20}
	results := map[bool]map[string]figures{}
	for _, reuse := range []bool{true, false} {
		name := map[bool]string{true: "reuse", false: "no-reuse"}[reuse]
		b.Run(name, func(b *testing.B) {
			for range b.N {
				results[reuse] = benchMode(b, cfg, reuse)
			}
			reportMetrics(b, results[reuse])
		})
	}
	if len(results) == 2 { // both modes ran: not narrowed by -bench
		printSideBySide(results)
	}
}

// benchOut is where the benchmark prints its figures: go test truncates a benchmark's log, and
// the manager logs there too.
var benchOut io.Writer = os.Stdout

type benchConfig struct{ pods, deployment, nodes, sequential int }

// figures are what one phase measured.
type figures struct {
	pods      int
	elapsed   time.Duration
	mutations float64 // mutating EC2 calls the VPC answered, any outcome
	throttled float64 // of them, RequestLimitExceeded
	podCalls  float64 // mutating calls the controller made for pods (purpose pod)
	p50, p99  float64 // bound → annotated, seconds
	ratio     float64 // cold burst: the budget's shortest time for it over its time
	start     time.Time
	tail      time.Duration // from the last pod created to the last annotated
	note      string
}

func (f figures) perPod(v float64) float64 { return v / float64(max(f.pods, 1)) }

// benchMode runs every phase on a fresh world, with or without reuse.
func benchMode(b *testing.B, cfg benchConfig, reuse bool) map[string]figures {
	prof, err := server.LoadProfile("aws")
	if err != nil {
		b.Fatal(err)
	}
	w := startWith(b, options{backend: backendVPC, instanceType: "m5.24xlarge", profile: prof, realClock: true,
		productionClient: true, cooldown: 2 * time.Second, releaseInterval: 500 * time.Millisecond, noReuse: !reuse})
	var nodes []string
	for i := range cfg.nodes {
		n, _ := w.addNode(b, fmt.Sprintf("ip-10-0-1-%d", i))
		w.waitCapacity(b, n.Name, 107)
		nodes = append(nodes, n.Name)
	}
	ns := controllertest.Namespace(b, w.c, "bench")
	deploy := w.policy(ns)
	deploy.Spec.UpdatePolicy = v1beta1.UpdatePolicyInPlace
	controllertest.Create(b, w.c, deploy, controllertest.SeedServiceAccount(ns))
	controllertest.WaitForWebhook(b, w.c, ns)
	rec := watchPods(b, w, ns)
	out := map[string]figures{}
	// phase runs one phase and measures it; pods names the pods it brought, once it ran.
	phase := func(name string, pods func() []string, run func()) figures {
		b.Helper()
		before, start := benchCalls(b, w), time.Now()
		run()
		f := measure(rec, pods(), start, before, benchCalls(b, w))
		out[name] = f
		fmt.Fprintf(benchOut, "%s %s: %d pods in %.1fs, p50 %.3fs, %.2f mutating calls/pod (%.0f throttled)\n",
			map[bool]string{true: "reuse", false: "no-reuse"}[reuse], name, f.pods, f.elapsed.Seconds(), f.p50, f.perPod(f.mutations), f.throttled)
		return f
	}

	// Cold: groups no node has seen.
	cold := names("cold-", cfg.pods)
	f := phase("cold", fixed(cold), func() {
		createPods(b, w, ns, cold, "rds-db-access")
		waitAllocated(b, w, ns, cold, 30*time.Minute)
	})
	budget := controller.DefaultEC2Budget
	rate, burst := budget.MutatingRate*(1-budget.LeaveShare), float64(budget.MutatingBurst)*(1-budget.LeaveShare)
	f.ratio = max(0, 2*float64(cfg.pods)-burst) / rate / f.elapsed.Seconds()
	out["cold"] = f

	keep := cold[:cfg.deployment]
	if reuse {
		// Release: every pod goes; their branches are parked. Then the same burst again.
		phase("release", fixed(cold), func() { deletePods(b, w, ns, cold); waitNothingCooling(b, w, 2*time.Minute) })
		seen := names("seen-", cfg.pods)
		var created time.Time
		f := phase("seen", fixed(seen), func() {
			createPods(b, w, ns, seen, "rds-db-access")
			created = time.Now()
			waitAllocated(b, w, ns, seen, 10*time.Minute)
		})
		// How long the last pods waited once all were created: the rest is the apiserver, the
		// webhook and the scheduler taking the burst in.
		f.tail = f.elapsed - created.Sub(f.start)
		out["seen"] = f
		keep = seen[:cfg.deployment]
		deletePods(b, w, ns, seen[cfg.deployment:])
		waitNothingCooling(b, w, 2*time.Minute)
	} else {
		gone := cold[cfg.deployment:]
		phase("release", fixed(gone), func() { deletePods(b, w, ns, gone); waitNothingCooling(b, w, 30*time.Minute) })
		out["seen"] = figures{note: "= cold: nothing is reused"}
	}

	// Rolling: maxSurge 25%, maxUnavailable 0: a quarter more pods, then as many old ones go.
	var fresh []string
	phase("rolling", func() []string { return fresh }, func() {
		step := max(1, cfg.deployment/4)
		for from := 0; from < len(keep); from += step {
			batch := names(fmt.Sprintf("roll-%d-", from), min(step, len(keep)-from))
			createPods(b, w, ns, batch, "rds-db-access")
			waitAllocated(b, w, ns, batch, 30*time.Minute)
			deletePods(b, w, ns, keep[from:from+len(batch)])
			fresh = append(fresh, batch...)
		}
		waitNothingCooling(b, w, 30*time.Minute) // the replaced pods' release is part of the cost
	})

	// Warm: a policy of other groups keeps 2 idle branches on every node, and two pods go to
	// each node (by their hostname), so every one finds a warm branch waiting. The warmer
	// cannot always make up for them: a trunk full of parked branches has no room until their
	// idle TTL.
	warmGroups := []string{w.vpc.NewGroup(b, w.vpcID, "warm")}
	two := int32(2)
	createPolicySA(b, w, ns, "warm", warmGroups, &two)
	if reuse {
		waitWarm(b, w, 2*cfg.nodes, 5*time.Minute)
	}
	warmPods := names("warm-", 2*cfg.nodes)
	phase("warm", fixed(warmPods), func() { createOneByOne(b, w, ns, warmPods, "warm", nodes) })

	// No warm: groups with no idle branch of their own (parked ones of other groups, with reuse).
	createPolicySA(b, w, ns, "other", []string{w.vpc.NewGroup(b, w.vpcID, "other")}, nil)
	otherPods := names("other-", cfg.sequential)
	phase("no warm", fixed(otherPods), func() { createOneByOne(b, w, ns, otherPods, "other", nil) })

	// Live: the Deployment's policy changes its groups; every running pod's branch follows.
	if reuse {
		now := []string{w.groups[0], w.vpc.NewGroup(b, w.vpcID, "backend-c")}
		before := podBranches(b, w, ns, fresh)
		phase("live", fixed(fresh), func() { changePolicyGroups(b, w, deploy, now); waitGroups(b, w, ns, fresh, now, 30*time.Minute) })
		// In place means in place: every pod is the one it was (same UID: not recreated) on the
		// branch it had (same ENI: its groups changed, it was not swapped).
		if after := podBranches(b, w, ns, fresh); !maps.Equal(before, after) {
			b.Fatalf("the live update replaced pods or their branches:\nbefore %v\nafter  %v", before, after)
		}
	} else {
		out["live"] = figures{note: "pods must be recreated: see rolling"}
	}
	return out
}
func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// createPods creates pods of ServiceAccount sa, a few at a time.
func createPods(b *testing.B, w *world, ns string, names []string, sa string) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error { return w.c.Create(b.Context(), controllertest.Pod(ns, name, sa)) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// createOneByOne creates pods of ServiceAccount sa one at a time, each once the last one is
// annotated; with nodes, the i-th goes to nodes[i % len(nodes)], through the scheduler.
func createOneByOne(b *testing.B, w *world, ns string, names []string, sa string, nodes []string) {
	b.Helper()
	for i, name := range names {
		p := controllertest.Pod(ns, name, sa)
		if len(nodes) > 0 {
			p.Spec.NodeSelector = map[string]string{corev1.LabelHostname: nodes[i%len(nodes)]}
		}
		controllertest.Create(b, w.c, p)
		waitAllocated(b, w, ns, []string{name}, 5*time.Minute)
	}
}

// deletePods deletes pods at once (as the kubelet does once their containers are gone), a few
// at a time.
func deletePods(b *testing.B, w *world, ns string, names []string) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error {
			return w.c.Delete(b.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}, client.GracePeriodSeconds(0))
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprint(prefix, i)
	}
	return out
}

func fixed(names []string) func() []string { return func() []string { return names } }

// waitNothingCooling waits until no branch cools down or is being deleted, on any node: all
// released pods' branches are parked (with reuse) or gone (without).
func waitNothingCooling(b *testing.B, w *world, timeout time.Duration) {
	b.Helper()
	testenv.Eventually(b, timeout, func(context.Context) error {
		for _, n := range w.store.Nodes() {
			if u, _ := w.store.Usage(n); u.Cooling > 0 {
				return fmt.Errorf("node %s: %d branch ENIs still cooling down or being deleted", n, u.Cooling)
			}
		}
		return nil
	})
}

// waitWarm waits until the nodes hold n warm branches.
func waitWarm(b *testing.B, w *world, n int, timeout time.Duration) {
	b.Helper()
	testenv.Eventually(b, timeout, func(context.Context) error {
		warm := 0
		for _, node := range w.store.Nodes() {
			u, _ := w.store.Usage(node)
			warm += u.Warm
		}
		if warm < n {
			return fmt.Errorf("%d warm branches, want %d", warm, n)
		}
		return nil
	})
}

// createPolicySA creates a ServiceAccount name labelled role=name and a policy of groups
// selecting it, with a warm target, and waits until the webhook sees them.
func createPolicySA(b *testing.B, w *world, ns, name string, groups []string, warm *int32) {
	b.Helper()
	p := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1beta1.SecurityGroupPolicySpec{
			ServiceAccountSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": name}},
			SecurityGroups:         v1beta1.GroupIDs{Groups: groups}, WarmBranchesPerNode: warm}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"role": name}}}
	controllertest.Create(b, w.c, p, sa)
	waitWebhookCacheFor(b, w, ns, name)
}

// changePolicyGroups gives a policy other groups.
func changePolicyGroups(b *testing.B, w *world, p *v1beta1.SecurityGroupPolicy, groups []string) {
	b.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := w.c.Get(b.Context(), client.ObjectKeyFromObject(p), p); err != nil {
			return err
		}
		p.Spec.SecurityGroups.Groups = groups
		return w.c.Update(b.Context(), p)
	})
	if err != nil {
		b.Fatal(err)
	}
}

// waitGroups waits until the branch of every named pod carries groups.
func waitGroups(b *testing.B, w *world, ns string, names []string, groups []string, timeout time.Duration) {
	b.Helper()
	testenv.Eventually(b, timeout, func(ctx context.Context) error {
		branches, err := w.enis(ctx, cloud.InterfaceTypeBranch)
		if err != nil {
			return err
		}
		current := map[string]bool{}
		for _, e := range branches {
			current[e.ID] = inventory.SameGroups(e.SecurityGroups, groups)
		}
		var list corev1.PodList
		if err := w.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		want := map[string]bool{}
		for _, n := range names {
			want[n] = true
		}
		behind := 0
		for i := range list.Items {
			p := &list.Items[i]
			if !want[p.Name] {
				continue
			}
			if enis, ok, _ := podENIs(p); !ok || len(enis) != 1 || !current[enis[0].ENIID] {
				behind++
			}
		}
		if behind > 0 {
			return fmt.Errorf("%d of %d pods' branches do not carry %v yet", behind, len(names), groups)
		}
		return nil
	})
}

// podBranches is each named pod's UID and branch ENI ("UID eni-…"), to tell a pod whose branch
// changed groups in place from one recreated or moved to another branch.
func podBranches(b *testing.B, w *world, ns string, names []string) map[string]string {
	b.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var list corev1.PodList
	if err := w.c.List(b.Context(), &list, client.InNamespace(ns)); err != nil {
		b.Fatal(err)
	}
	out := map[string]string{}
	for i := range list.Items {
		p := &list.Items[i]
		if !want[p.Name] {
			continue
		}
		enis, _, _ := podENIs(p)
		ids := make([]string, 0, len(enis))
		for _, e := range enis {
			ids = append(ids, e.ENIID)
		}
		out[p.Name] = string(p.UID) + " " + strings.Join(ids, ",")
	}
	if len(out) != len(names) {
		b.Fatalf("%d of %d pods found", len(out), len(names))
	}
	return out
}

// calls is what the VPC answered, by action and code, and the controller's mutating calls for
// pods, at one moment.
type calls struct {
	vpc  map[string]map[string]float64
	pods float64
}

func benchCalls(b *testing.B, w *world) calls {
	b.Helper()
	c := calls{vpc: vpcRequests(b, w)}
	mfs, err := w.ec2Metrics.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "podsg_ec2_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["purpose"] == string(cloud.PurposePod) && slices.Contains(mutatingActions, l["action"]) {
				c.pods += m.GetCounter().GetValue()
			}
		}
	}
	return c
}

// measure sums a phase: the mutating calls between two snapshots and the bound→annotated
// latencies of the named pods it annotated. It ends when the last of them was annotated, or
// now when it annotated none (a release, a live update).
func measure(rec *podTimes, names []string, start time.Time, before, after calls) figures {
	f := figures{pods: len(names), podCalls: after.pods - before.pods}
	for _, a := range mutatingActions {
		for code, n := range after.vpc[a] {
			f.mutations += n - before.vpc[a][code]
			if code == apierr.CodeRequestLimitExceeded {
				f.throttled += n - before.vpc[a][code]
			}
		}
	}
	rec.mu.Lock()
	var lat []float64
	end := start
	for _, n := range names {
		bt, bok := rec.bound[n]
		at, aok := rec.annotated[n]
		if bok && aok && at.After(start) {
			lat = append(lat, at.Sub(bt).Seconds())
			end = later(end, at)
		}
	}
	rec.mu.Unlock()
	if len(lat) < len(names) || len(names) == 0 {
		end = time.Now()
	}
	slices.Sort(lat)
	f.start, f.elapsed, f.p50, f.p99 = start, end.Sub(start), quantile(lat, 0.5), quantile(lat, 0.99)
	return f
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// printSideBySide prints every phase's figures with and without reuse.
func printSideBySide(results map[bool]map[string]figures) {
	// calls/pod: every mutating call the VPC answered in the phase (warming and cleanup
	// included); pod: those the controller made for pods, the round trips a pod waits for.
	row := func(f figures) string {
		if f.note != "" {
			return fmt.Sprintf("%-74s", f.note)
		}
		p50 := "      -" // a phase that annotates no pod (a release, a live update)
		if f.p50 > 0 {
			p50 = fmt.Sprintf("%6.3fs", f.p50)
		}
		return fmt.Sprintf("%5d pods %7.1fs %7.1f pods/s p50 %s %5.2f calls/pod %5.2f pod", f.pods, f.elapsed.Seconds(),
			float64(f.pods)/max(f.elapsed.Seconds(), 1e-9), p50, f.perPod(f.mutations), f.perPod(f.podCalls))
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-8s | %-74s | %s\n", "phase", "reuse (podsg's default)", "no reuse (create per pod)")
	for _, name := range []string{"cold", "release", "seen", "rolling", "warm", "no warm", "live"} {
		fmt.Fprintf(&sb, "%-8s | %-74s | %s\n", name, row(results[true][name]), row(results[false][name]))
	}
	fmt.Fprintf(&sb, "cold burst pace over what the budget allows: %.2f (reuse), %.2f (no reuse)\n",
		results[true]["cold"].ratio, results[false]["cold"].ratio)
	fmt.Fprintf(&sb, "seen burst: the last pod annotated %.1fs after the last one was created; p99 bound→annotated %.3fs\n",
		results[true]["seen"].tail.Seconds(), results[true]["seen"].p99)
	fmt.Fprint(benchOut, sb.String())
}

// reportMetrics reports one mode's main figures as benchmark metrics, for benchstat.
func reportMetrics(b *testing.B, r map[string]figures) {
	b.ReportMetric(r["cold"].ratio, "cold_pace/budget")
	b.ReportMetric(r["cold"].elapsed.Seconds(), "cold_s")
	b.ReportMetric(r["rolling"].perPod(r["rolling"].mutations), "rolling_calls/pod")
	b.ReportMetric(r["warm"].p50*1000, "warm_p50_ms")
	b.ReportMetric(r["warm"].perPod(r["warm"].podCalls), "warm_pod_calls/pod")
	b.ReportMetric(r["no warm"].perPod(r["no warm"].podCalls), "nowarm_pod_calls/pod")
	for _, name := range []string{"seen", "live"} {
		if f := r[name]; f.note == "" {
			b.ReportMetric(f.elapsed.Seconds(), name+"_s")
			b.ReportMetric(f.perPod(f.mutations), name+"_calls/pod")
		}
	}
}

// waitAllocated waits until every named pod is annotated with one ENI.
func waitAllocated(b *testing.B, w *world, ns string, names []string, timeout time.Duration) {
	b.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var last error
	err := wait.PollUntilContextTimeout(b.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var list corev1.PodList
		if err := w.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			last = err
			return false, nil //nolint:nilerr // a failed poll is retried until the timeout
		}
		done := 0
		for i := range list.Items {
			if enis, ok, _ := podENIs(&list.Items[i]); ok && len(enis) == 1 && want[list.Items[i].Name] {
				done++
			}
		}
		last = fmt.Errorf("%d of %d pods annotated", done, len(want))
		return done == len(want), nil
	})
	if err != nil {
		b.Fatalf("pods not allocated within %s: %v", timeout, last)
	}
}

// podTimes records when the test first saw each pod bound and annotated, from a watch.
type podTimes struct {
	mu               sync.Mutex
	bound, annotated map[string]time.Time
}

func watchPods(b *testing.B, w *world, ns string) *podTimes {
	b.Helper()
	wc, err := client.NewWithWatch(w.env.Config, client.Options{Scheme: w.env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	rec := &podTimes{bound: map[string]time.Time{}, annotated: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			wi, err := wc.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns))
			if err != nil {
				continue
			}
			for ev := range wi.ResultChan() {
				p, ok := ev.Object.(*corev1.Pod)
				if !ok || ev.Type == watch.Deleted {
					continue
				}
				now := time.Now()
				rec.mu.Lock()
				if _, seen := rec.bound[p.Name]; !seen && p.Spec.NodeName != "" {
					rec.bound[p.Name] = now
				}
				if _, seen := rec.annotated[p.Name]; !seen && p.Annotations[v1beta1.AnnotationPodENI] != "" {
					rec.annotated[p.Name] = now
				}
				rec.mu.Unlock()
			}
			wi.Stop()
		}
	}()
	b.Cleanup(func() { cancel(); <-done })
	return rec
}

// quantile of sorted values (nearest rank); 0 for none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}
