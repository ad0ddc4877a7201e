//go:build awsrc

package sidebyside

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// workload is what BenchmarkCompare asks of each controller.
type workload struct {
	nodes, pods, batch int
}

// BenchmarkCompare runs one workload against AWS's vpc-resource-controller and against
// podsg-controller, each in a world of its own (a fresh local VPC with EC2's throttling profile,
// a real apiserver and scheduler, the same simulated nodes), and prints one table:
//   - burst: PODSG_COMPARE_PODS (100) SG pods created at once on PODSG_COMPARE_NODES (4) nodes;
//   - rolling: every pod replaced, PODSG_COMPARE_BATCH (20) at a time, until the replaced pods'
//     branch ENIs are deleted (after the 30 s cool-down of both);
//   - restart: the controller stopped (SIGTERM) and started again, until it annotates a new pod.
//
// PODSG_COMPARE_OUT=FILE also writes the table there (Markdown).
func BenchmarkCompare(b *testing.B) {
	wl := workload{nodes: envInt(b, "PODSG_COMPARE_NODES", 4), pods: envInt(b, "PODSG_COMPARE_PODS", 100),
		batch: envInt(b, "PODSG_COMPARE_BATCH", 20)}
	contenders := []struct {
		key string
		c   contender
	}{{"aws", awsControllerFromEnv(b)}, {"podsg", newPodsgController(b)}}
	var results []result
	for _, c := range contenders {
		b.Run(c.key, func(b *testing.B) {
			for range b.N {
				results = append(results, runWorkload(b, c.c, wl))
			}
		})
	}
	if len(results) != len(contenders) {
		b.Fatalf("%d of %d contenders finished the workload", len(results), len(contenders))
	}
	table := renderTable(wl, results)
	b.Logf("\n%s", table)
	if out := os.Getenv("PODSG_COMPARE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// result is one controller's run of the workload.
type result struct {
	name           string
	burst, rolling phaseResult
	restart        time.Duration // from the new incarnation's start to its first annotated pod
	// restartDescribes are the Describe* calls of the new incarnation until then.
	restartDescribes float64
	usage            procUsage // all incarnations
}

func runWorkload(b *testing.B, ctrl contender, wl workload) result {
	b.Helper()
	w := newWorld(b, ctrl, wl.nodes)
	const ns = "bench"
	workloadNamespace(b, w, ns)
	w.startController(b)
	w.waitNodesReady(b, 5*time.Minute)
	w.waitWebhook(b, ns)
	rec := watchPods(b, w.env, ns)
	res := result{name: ctrl.name()}

	b.ResetTimer()
	names := podNames("burst-", 0, wl.pods)
	res.burst = w.measure(b, rec, names, func() {
		w.createPods(b, ns, names)
		w.waitAllAnnotated(b, ns, names, 15*time.Minute)
	})

	var replacements []string
	res.rolling = w.measure(b, rec, nil, func() {
		for from := 0; from < wl.pods; from += wl.batch {
			fresh := podNames("rolling-", from, min(from+wl.batch, wl.pods))
			w.deletePods(b, ns, names[from:min(from+wl.batch, wl.pods)])
			w.createPods(b, ns, fresh)
			w.waitAllAnnotated(b, ns, fresh, 10*time.Minute)
			replacements = append(replacements, fresh...)
		}
		// The replaced pods' ENIs are part of the replacement's cost: wait for their deletion.
		w.waitBranches(b, wl.pods, cooldown+5*time.Minute)
	})
	res.rolling.pods, res.rolling.latencies = len(replacements), rec.latencies(replacements)

	w.stopController(b)
	before, started := w.vpc.requests(b), time.Now()
	w.startController(b)
	w.waitWebhook(b, ns)
	w.createPods(b, ns, []string{"after-restart"})
	w.waitAllAnnotated(b, ns, []string{"after-restart"}, 5*time.Minute)
	res.restart = time.Since(started)
	res.restartDescribes, _ = callsBetween(before, w.vpc.requests(b), describing)
	b.StopTimer()

	u, err := readProcUsage(w.proc.Pid())
	if err != nil {
		b.Fatal(err)
	}
	w.usage.add(u)
	res.usage = w.usage
	b.Logf("%s: %+v", res.name, res)
	return res
}

// phaseResult is what one phase of the workload took.
type phaseResult struct {
	pods      int
	elapsed   time.Duration
	latencies []time.Duration // bound→annotated, sorted
	// mutating and throttled count the controller's EC2 calls in the phase.
	mutating, throttled float64
}

// measure runs one phase and records its EC2 calls and, for names, bound→annotated latencies.
func (w *world) measure(b *testing.B, rec *podTimes, names []string, phase func()) phaseResult {
	b.Helper()
	before, start := w.vpc.requests(b), time.Now()
	phase()
	r := phaseResult{pods: len(names), elapsed: time.Since(start), latencies: rec.latencies(names)}
	after := w.vpc.requests(b)
	r.mutating, _ = callsBetween(before, after, mutating)
	_, r.throttled = callsBetween(before, after, anyAction)
	return r
}

func podNames(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, prefix+strconv.Itoa(i))
	}
	return out
}

// createPods creates pods of the policy's ServiceAccount, a few at a time, as a Deployment's
// ReplicaSet controller does.
func (w *world) createPods(b *testing.B, ns string, names []string) {
	b.Helper()
	var g errgroup.Group
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error { return w.c.Create(b.Context(), pod(ns, name)) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// deletePods deletes pods at once: no kubelet runs them, so nothing would end them gracefully.
func (w *world) deletePods(b *testing.B, ns string, names []string) {
	b.Helper()
	for _, name := range names {
		if err := w.c.Delete(b.Context(), pod(ns, name), client.GracePeriodSeconds(0)); err != nil {
			b.Fatal(err)
		}
	}
}

// waitAllAnnotated waits until every named pod carries one branch ENI.
func (w *world) waitAllAnnotated(b *testing.B, ns string, names []string, timeout time.Duration) {
	b.Helper()
	w.eventually(b, timeout, func(ctx context.Context) error {
		done := 0
		for _, name := range names {
			if _, err := annotatedENI(ctx, w.c, ns, name); err == nil {
				done++
			}
		}
		if done < len(names) {
			return fmt.Errorf("%d of %d pods annotated", done, len(names))
		}
		return nil
	})
}

// waitBranches waits until the VPC holds exactly want branch ENIs. It describes at most every
// 2 s: its calls draw on the same throttling buckets as the controller's.
func (w *world) waitBranches(b *testing.B, want int, timeout time.Duration) {
	b.Helper()
	w.eventually(b, timeout, every(2*time.Second, func(ctx context.Context) error {
		have, err := w.vpc.branches(ctx)
		if err != nil {
			return err
		}
		if len(have) != want {
			return fmt.Errorf("%d branch ENIs, want %d", len(have), want)
		}
		return nil
	}))
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
