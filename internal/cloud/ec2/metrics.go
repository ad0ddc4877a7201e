package ec2

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/budget"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	wait     *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, buckets map[string]*budget.Bucket) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsg_ec2_requests_total",
			Help: "EC2 API calls made by podsg, by action, purpose (pod, node, update, warm, cleanup, other) and result (ok, or the EC2 error code).",
		}, []string{"action", "purpose", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podsg_ec2_request_duration_seconds",
			Help:    "Latency of EC2 API calls, including SDK retries.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"action"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podsg_ec2_budget_wait_seconds",
			Help:    "Time EC2 calls waited for the client-side request budget, by purpose.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"purpose"}),
	}
	if reg == nil {
		return m, nil
	}
	collectors := []prometheus.Collector{m.requests, m.duration, m.wait}
	for class, b := range buckets {
		collectors = append(collectors,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "podsg_ec2_budget_tokens", ConstLabels: prometheus.Labels{"class": class},
				Help: "Requests left in the client-side EC2 budget, by class (mutating, describe).",
			}, b.Tokens),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "podsg_ec2_budget_refill_per_second", ConstLabels: prometheus.Labels{"class": class},
				Help: "The client-side EC2 budget's current refill rate, lowered while EC2 throttles, by class.",
			}, b.Rate))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering EC2 client metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(action string, purpose cloud.Purpose, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
		var ae *cloud.APIError
		if errors.As(err, &ae) {
			result = ae.Code
		}
	}
	m.requests.WithLabelValues(action, string(purpose), result).Inc()
	m.duration.WithLabelValues(action).Observe(d.Seconds())
}

func (m *metrics) waited(purpose cloud.Purpose, d time.Duration) {
	m.wait.WithLabelValues(string(purpose)).Observe(d.Seconds())
}
