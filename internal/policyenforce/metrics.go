package policyenforce

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics: podsg_netpol_*. The denied-packet counter is read from the table's named counters
// at each scrape.
type metrics struct {
	e         *Enforcer
	applies   *prometheus.CounterVec // podsg_netpol_ruleset_applies_total{result}
	duration  prometheus.Histogram   // podsg_netpol_ruleset_apply_seconds
	localPods prometheus.Gauge       // podsg_netpol_local_pods
	denied    *prometheus.Desc
}

func newMetrics(reg prometheus.Registerer, e *Enforcer) *metrics {
	m := &metrics{e: e,
		applies: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "podsg_netpol_ruleset_applies_total",
			Help: "Times the agent compiled and installed the node's network policy ruleset, by result (ok, error)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "podsg_netpol_ruleset_apply_seconds",
			Help:    "Time to compile the node's network policy ruleset and install it (one nft transaction).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
		localPods: prometheus.NewGauge(prometheus.GaugeOpts{Name: "podsg_netpol_local_pods",
			Help: "Pods of this node the installed network policy ruleset enforces."}),
		denied: prometheus.NewDesc("podsg_netpol_denied_packets_total",
			"Packets the node's network policy ruleset dropped, by the policy that denied them (\"(pod not yet known)\": a pod whose rules were not installed yet).",
			[]string{"policy"}, nil),
	}
	if reg != nil {
		reg.MustRegister(m.applies, m.duration, m.localPods, m)
	}
	return m
}

func (m *metrics) observe(d time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.applies.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.denied }

// Collect implements prometheus.Collector: the installed table's counters, summed by policy.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	for policy, n := range m.e.Denied(context.Background()) {
		ch <- prometheus.MustNewConstMetric(m.denied, prometheus.CounterValue, float64(n), policy)
	}
}

// Denied reads the packets each policy's drops counted in the installed ruleset (nothing if
// the counters cannot be read).
func (e *Enforcer) Denied(ctx context.Context) map[string]uint64 {
	values, err := e.nft.Counters(ctx)
	if err != nil {
		return nil
	}
	e.mu.Lock()
	names := e.counters
	e.mu.Unlock()
	out := map[string]uint64{}
	for name, policy := range names {
		out[policy] += values[name].Packets
	}
	return out
}
