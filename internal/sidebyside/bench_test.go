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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// workload is what BenchmarkCompare asks of each controller.
type workload struct {
	nodes, pods, batch int
	// timeout bounds each wait: a controller that does not finish within it is a result (the
	// table says how far it got), not a failure of the benchmark.
	timeout time.Duration
}

// BenchmarkCompare runs one workload against AWS's vpc-resource-controller and against
// podsg-controller, each in a world of its own (a fresh local VPC with EC2's throttling profile,
// a real apiserver and scheduler, the same simulated nodes), and prints one table:
//   - burst: PODSG_COMPARE_PODS (100) SG pods created at once on PODSG_COMPARE_NODES (4) nodes;
//   - rolling: every pod replaced, PODSG_COMPARE_BATCH (20) at a time, until the replaced pods'
//     branch ENIs are deleted (after the 30 s cool-down of both);
//   - restart: the controller stopped (SIGTERM) and started again, until it annotates a new pod.
//
// Each wait ends after PODSG_COMPARE_TIMEOUT_MIN (5) minutes; the table then says how far the
// controller got. PODSG_COMPARE_OUT=FILE also writes the table there (Markdown).
func BenchmarkCompare(b *testing.B) {
	wl := workload{nodes: envInt(b, "PODSG_COMPARE_NODES", 4), pods: envInt(b, "PODSG_COMPARE_PODS", 100),
		batch: envInt(b, "PODSG_COMPARE_BATCH", 20), timeout: time.Duration(envInt(b, "PODSG_COMPARE_TIMEOUT_MIN", 5)) * time.Minute}
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
	// rollingSkipped says why the rolling replacement did not run.
	rollingSkipped string
	// oldENIsLeft counts the branch ENIs beyond the pods' that were still there when the
	// rolling replacement's wait for their deletion ended.
	oldENIsLeft int
	// restart is from the new incarnation's start to a new pod annotated; 0 when it was not.
	restart time.Duration
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
	res.burst = w.measure(b, rec, names, func() int {
		w.createPods(b, ns, names)
		return w.annotatedWithin(b, ns, names, wl.timeout)
	})
	if res.burst.done < res.burst.pods {
		res.rollingSkipped = "not run: the burst did not finish"
	} else {
		res.rolling, res.oldENIsLeft = w.rollingReplacement(b, rec, ns, names, wl)
	}
	w.restart(b, ns, wl.timeout, &res)
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

// rollingReplacement replaces the pods batch by batch, as a Deployment's rolling update does,
// and then waits until the replaced pods' branch ENIs are deleted: they are part of its cost.
func (w *world) rollingReplacement(b *testing.B, rec *podTimes, ns string, names []string, wl workload) (phaseResult, int) {
	b.Helper()
	var fresh []string
	left := 0
	r := w.measure(b, rec, nil, func() int {
		done := 0
		for from := 0; from < len(names); from += wl.batch {
			to := min(from+wl.batch, len(names))
			batch := podNames("rolling-", from, to)
			w.deletePods(b, ns, names[from:to])
			w.createPods(b, ns, batch)
			fresh = append(fresh, batch...)
			n := w.annotatedWithin(b, ns, batch, wl.timeout)
			if done += n; n < len(batch) {
				return done
			}
		}
		left = w.branchesLeftWithin(b, len(names), cooldown+wl.timeout)
		return done
	})
	r.pods, r.latencies = len(names), rec.latencies(fresh)
	return r, left
}

// restart stops the controller as a rolling update of its Deployment does and measures how long
// the next incarnation takes to serve: its webhook asks a new pod for a branch ENI, and it
// annotates that pod.
func (w *world) restart(b *testing.B, ns string, timeout time.Duration, res *result) {
	b.Helper()
	w.stopController(b)
	before, started := w.vpc.requests(b), time.Now()
	w.startController(b)
	w.waitWebhook(b, ns)
	w.createPods(b, ns, []string{"after-restart"})
	if w.annotatedWithin(b, ns, []string{"after-restart"}, timeout) == 1 {
		res.restart = time.Since(started)
	}
	res.restartDescribes, _ = callsBetween(before, w.vpc.requests(b), describing)
}

// phaseResult is what one phase of the workload took.
type phaseResult struct {
	pods, done int // pods the phase was about, and those annotated when it ended
	elapsed    time.Duration
	latencies  []time.Duration // bound→annotated, sorted
	// mutating and throttled count the controller's EC2 calls in the phase.
	mutating, throttled float64
}

// measure runs one phase, which returns how many pods it got annotated, and records its EC2
// calls and, for names, bound→annotated latencies.
func (w *world) measure(b *testing.B, rec *podTimes, names []string, phase func() int) phaseResult {
	b.Helper()
	before, start := w.vpc.requests(b), time.Now()
	done := phase()
	r := phaseResult{pods: len(names), done: done, elapsed: time.Since(start), latencies: rec.latencies(names)}
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

// annotatedWithin waits until every named pod carries one branch ENI, or timeout has passed,
// and returns how many do.
func (w *world) annotatedWithin(b *testing.B, ns string, names []string, timeout time.Duration) int {
	b.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	done := 0
	err := wait.PollUntilContextTimeout(b.Context(), 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if w.proc.Exited() {
			return false, fmt.Errorf("%s exited: %w\n%s", w.ctrl.name(), w.proc.Err(), w.proc.LogTail())
		}
		var list corev1.PodList
		if err := w.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return false, nil //nolint:nilerr // a failed look is retried until the timeout
		}
		done = 0
		for i := range list.Items {
			if _, err := podENI(&list.Items[i]); err == nil && want[list.Items[i].Name] {
				done++
			}
		}
		return done == len(want), nil
	})
	if err != nil && !wait.Interrupted(err) {
		b.Fatal(err)
	}
	return done
}

// branchesLeftWithin waits until the VPC holds no more than want branch ENIs, or timeout has
// passed, and returns how many more it holds. It describes at most every 2 s: its calls draw on
// the same throttling buckets as the controller's.
func (w *world) branchesLeftWithin(b *testing.B, want int, timeout time.Duration) int {
	b.Helper()
	left := -1
	err := wait.PollUntilContextTimeout(b.Context(), 2*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		have, err := w.vpc.branches(ctx)
		if err != nil {
			return false, nil //nolint:nilerr // a failed look (throttled) is retried until the timeout
		}
		left = max(len(have)-want, 0)
		return left == 0, nil
	})
	if err != nil && !wait.Interrupted(err) {
		b.Fatal(err)
	}
	return left
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
