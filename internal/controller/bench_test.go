package controller_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/server"
)

// mutatingActions are the EC2 mutations podsg-controller makes.
var mutatingActions = []string{"CreateNetworkInterface", "DeleteNetworkInterface", "AttachNetworkInterface",
	"DetachNetworkInterface", "AssociateTrunkInterface", "DisassociateTrunkInterface", "CreateTags"}

// BenchmarkAllocation: 500 security-group pods (PODSG_BENCH_PODS) on 10 nodes
// (PODSG_BENCH_NODES) of a local VPC with EC2's documented throttling (the aws profile), the
// controller on the production EC2 client, the real scheduler binding. It reports pods/s,
// bound→annotated latency and mutating EC2 calls per pod for the first rollout and for a
// rolling replacement of every pod in batches of 50 (PODSG_BENCH_BATCH).
func BenchmarkAllocation(b *testing.B) {
	pods, nodes, batch := envInt(b, "PODSG_BENCH_PODS", 500), envInt(b, "PODSG_BENCH_NODES", 10), envInt(b, "PODSG_BENCH_BATCH", 50)
	prof, err := server.LoadProfile("aws")
	if err != nil {
		b.Fatal(err)
	}
	w := startWith(b, options{backend: backendVPC, instanceType: "m5.24xlarge", profile: prof, realClock: true,
		productionClient: true, cooldown: 2 * time.Second, releaseInterval: 500 * time.Millisecond})
	for i := range nodes {
		n, _ := w.addNode(b, fmt.Sprintf("ip-10-0-1-%d", i))
		w.waitCapacity(b, n.Name, 107)
	}
	for i := range b.N {
		ns := controllertest.Namespace(b, w.c, fmt.Sprint("bench-", i))
		controllertest.Create(b, w.c, w.policy(ns), controllertest.SeedServiceAccount(ns))
		controllertest.WaitForWebhook(b, w.c, ns)
		rec := watchPods(b, w, ns)
		names := make([]string, pods)
		for j := range names {
			names[j] = fmt.Sprint("backend-", j)
		}

		b.ResetTimer()
		before, start := vpcRequests(b, w), time.Now()
		createPods(b, w, ns, names)
		waitAllocated(b, w, ns, names, 15*time.Minute)
		report(b, w, rec, "", names, start, before)

		before, start = vpcRequests(b, w), time.Now()
		var replacements []string
		for from := 0; from < pods; from += batch {
			old := names[from:min(from+batch, pods)]
			fresh := make([]string, len(old))
			for j := range old {
				fresh[j] = fmt.Sprint("replacement-", from+j)
				deletePod(b, w.c, ns, old[j])
			}
			createPods(b, w, ns, fresh)
			waitAllocated(b, w, ns, fresh, 10*time.Minute)
			replacements = append(replacements, fresh...)
		}
		// The replaced pods' ENIs are part of the replacement's cost: wait for their release.
		testenv.Eventually(b, 10*time.Minute, func(context.Context) error {
			for _, n := range w.store.Nodes() {
				if u, _ := w.store.Usage(n); u.Cooling > 0 {
					return fmt.Errorf("node %s: %d branch ENIs still cooling down", n, u.Cooling)
				}
			}
			return nil
		})
		report(b, w, rec, "rolling_", replacements, start, before)
		b.StopTimer()
		for _, name := range replacements {
			deletePod(b, w.c, ns, name)
		}
	}
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

// createPods creates pods of the seed ServiceAccount, a few at a time.
func createPods(b *testing.B, w *world, ns string, names []string) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error { return w.c.Create(b.Context(), controllertest.Pod(ns, name, "rds-db-access")) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
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

// report publishes pods/s, p50/p99 bound→annotated and EC2 calls per pod of one phase.
func report(b *testing.B, w *world, rec *podTimes, prefix string, names []string, start time.Time, before map[string]map[string]float64) {
	b.Helper()
	after := vpcRequests(b, w)
	var mutating, ok, throttled float64
	for _, a := range mutatingActions {
		for code, n := range after[a] {
			d := n - before[a][code]
			mutating += d
			switch code {
			case "Success":
				ok += d
			case apierr.CodeRequestLimitExceeded:
				throttled += d
			}
		}
	}
	rec.mu.Lock()
	var lat []float64
	end := start
	for _, n := range names {
		bt, bok := rec.bound[n]
		at, aok := rec.annotated[n]
		if !bok || !aok {
			continue
		}
		lat = append(lat, at.Sub(bt).Seconds())
		if at.After(end) {
			end = at
		}
	}
	rec.mu.Unlock()
	if len(lat) < len(names) {
		b.Logf("%swatch saw %d of %d pods bound and annotated", prefix, len(lat), len(names))
	}
	slices.Sort(lat)
	n := float64(len(names))
	elapsed := end.Sub(start).Seconds()
	b.ReportMetric(n/elapsed, prefix+"pods/s")
	b.ReportMetric(quantile(lat, 0.5), prefix+"p50_bound_to_annotated_s")
	b.ReportMetric(quantile(lat, 0.99), prefix+"p99_bound_to_annotated_s")
	b.ReportMetric(ok/n, prefix+"mutating_ok_calls/pod")
	b.ReportMetric(mutating/n, prefix+"mutating_calls/pod")
	b.ReportMetric(throttled/n, prefix+"throttled_mutating_calls/pod")
	b.Logf("%s%d pods in %.1fs: %.2f pods/s, bound→annotated p50 %.2fs p99 %.2fs, mutating calls %.0f (%.0f ok, %.0f throttled)",
		prefix, len(names), elapsed, n/elapsed, quantile(lat, 0.5), quantile(lat, 0.99), mutating, ok, throttled)
}

// quantile of sorted values (nearest rank); 0 for none.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}
