//go:build awsrc

package sidebyside

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// podTimes records when the test first saw each pod bound and annotated, from a watch: the
// same clock and the same observer for both controllers.
type podTimes struct {
	mu               sync.Mutex
	bound, annotated map[string]time.Time
}

func watchPods(t testing.TB, env *testenv.Env, ns string) *podTimes {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	rec := &podTimes{bound: map[string]time.Time{}, annotated: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			wi, err := wc.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns))
			if err != nil {
				continue
			}
			for ev := range wi.ResultChan() {
				if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted {
					rec.saw(p, time.Now())
				}
			}
			wi.Stop()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return rec
}

func (r *podTimes) saw(p *corev1.Pod, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.bound[p.Name]; !seen && p.Spec.NodeName != "" {
		r.bound[p.Name] = now
	}
	if _, seen := r.annotated[p.Name]; !seen && p.Annotations[v1beta1.AnnotationPodENI] != "" {
		r.annotated[p.Name] = now
	}
}

// latencies are the named pods' bound→annotated times, sorted.
func (r *podTimes) latencies(names []string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, n := range names {
		bt, bok := r.bound[n]
		at, aok := r.annotated[n]
		if bok && aok {
			out = append(out, at.Sub(bt))
		}
	}
	slices.Sort(out)
	return out
}

// quantile of sorted values (nearest rank); 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)) + 0.5)
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// renderTable is the comparison as a Markdown table: one row per measure, one column per
// controller.
func renderTable(wl workload, results []result) string {
	rows := []struct {
		what string
		val  func(r result) string
	}{
		{fmt.Sprintf("burst: %d SG pods on %d nodes, pods/s", wl.pods, wl.nodes), func(r result) string { return rate(r.burst) }},
		{"burst: bound→annotated p50 / p99", func(r result) string { return percentiles(r.burst) }},
		{"burst: mutating EC2 calls per annotated pod", func(r result) string { return perPod(r.burst.mutating, r.burst.done) }},
		{"burst: throttled EC2 calls", func(r result) string { return fmt.Sprintf("%.0f", r.burst.throttled) }},
		{fmt.Sprintf("rolling: every pod replaced, %d at a time, until the old ENIs are deleted", wl.batch), func(r result) string {
			if r.rollingSkipped != "" {
				return r.rollingSkipped
			}
			s := fmt.Sprintf("%.0f s", r.rolling.elapsed.Seconds())
			if r.rolling.done < r.rolling.pods {
				s += fmt.Sprintf(" (did not finish: %d of %d pods annotated)", r.rolling.done, r.rolling.pods)
			}
			if r.oldENIsLeft != 0 {
				s += fmt.Sprintf(" (%d old ENIs left)", r.oldENIsLeft)
			}
			return s
		}},
		{"rolling: bound→annotated p50 / p99", skipped(func(r result) string { return percentiles(r.rolling) })},
		{"rolling: mutating EC2 calls per pod (incl. deleting the old ENIs)", skipped(func(r result) string {
			return perPod(r.rolling.mutating, r.rolling.done)
		})},
		{"rolling: throttled EC2 calls", skipped(func(r result) string { return fmt.Sprintf("%.0f", r.rolling.throttled) })},
		{"restart (SIGTERM) to a new pod annotated", func(r result) string {
			if r.restart == 0 {
				return fmt.Sprintf("not within %s", wl.timeout)
			}
			return fmt.Sprintf("%.1f s", r.restart.Seconds())
		}},
		{"restart: EC2 describe calls until then", func(r result) string { return fmt.Sprintf("%.0f", r.restartDescribes) }},
		{"controller CPU, all phases", func(r result) string { return fmt.Sprintf("%.1f s", r.usage.cpu.Seconds()) }},
		{"controller peak RSS", func(r result) string { return fmt.Sprintf("%d MiB", r.usage.peakRSS>>20) }},
	}
	var sb strings.Builder
	sb.WriteString("| |")
	for _, r := range results {
		sb.WriteString(" " + r.name + " |")
	}
	sb.WriteString("\n|---|" + strings.Repeat("---|", len(results)) + "\n")
	for _, row := range rows {
		sb.WriteString("| " + row.what + " |")
		for _, r := range results {
			sb.WriteString(" " + row.val(r) + " |")
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

// rate is pods annotated per second, and how far the controller got when it did not finish.
func rate(p phaseResult) string {
	s := fmt.Sprintf("%.2f", float64(p.done)/p.elapsed.Seconds())
	if p.done < p.pods {
		s += fmt.Sprintf(" (did not finish: %d of %d pods annotated in %.0f s)", p.done, p.pods, p.elapsed.Seconds())
	}
	return s
}

// skipped shows "-" for a phase that did not run.
func skipped(val func(r result) string) func(r result) string {
	return func(r result) string {
		if r.rollingSkipped != "" {
			return "-"
		}
		return val(r)
	}
}

func percentiles(p phaseResult) string {
	s := fmt.Sprintf("%.1f s / %.1f s", quantile(p.latencies, 0.5).Seconds(), quantile(p.latencies, 0.99).Seconds())
	if len(p.latencies) < p.done {
		s += fmt.Sprintf(" (%d of %d pods seen)", len(p.latencies), p.done)
	}
	return s
}

func perPod(calls float64, pods int) string {
	if pods == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", calls/float64(pods))
}
