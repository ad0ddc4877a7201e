package ec2

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/cloud"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podsg_ec2_requests_total",
			Help: "EC2 API calls made by podsg, by action and result (ok, or the EC2 error code).",
		}, []string{"action", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "podsg_ec2_request_duration_seconds",
			Help:    "Latency of EC2 API calls, including SDK retries.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"action"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering EC2 client metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) observe(action string, err error, d time.Duration) {
	result := "ok"
	if err != nil {
		result = "error"
		var ae *cloud.APIError
		if errors.As(err, &ae) {
			result = ae.Code
		}
	}
	m.requests.WithLabelValues(action, result).Inc()
	m.duration.WithLabelValues(action).Observe(d.Seconds())
}
