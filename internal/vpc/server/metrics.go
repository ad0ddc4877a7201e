package server

import "github.com/prometheus/client_golang/prometheus"

const (
	labelAction = "action"
	labelCode   = "code"
	// codeSuccess labels calls that returned no error.
	codeSuccess = "Success"
	// actionUnknown labels calls naming no implemented action, so clients
	// cannot blow up label cardinality.
	actionUnknown = "unknown"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "podsg", Subsystem: "vpc", Name: "requests_total",
			Help: "EC2 API requests served, by action and result code (Success or the EC2 error code).",
		}, []string{labelAction, labelCode}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "podsg", Subsystem: "vpc", Name: "request_duration_seconds",
			Help:    "EC2 API request latency, including injected latency.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{labelAction}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
