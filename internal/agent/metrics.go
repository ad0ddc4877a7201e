package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the agent's own; the EC2 client adds podsg_ec2_*.
type metrics struct {
	requests *prometheus.CounterVec   // podsg_agent_cni_requests_total{op,result}
	duration *prometheus.HistogramVec // podsg_agent_cni_request_duration_seconds{op}
}

// Results of a CNI request, as the plugin sees them.
const (
	resultOK    = "ok"
	resultRetry = "retry" // not an error: the annotation or an IP is not there yet
	resultError = "error"
)

func newMetrics(reg prometheus.Registerer, pool *Pool) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "podsg_agent_cni_requests_total",
			Help: "CNI plugin requests the agent answered, by operation (add, del) and result (ok, retry, error)."}, []string{"op", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "podsg_agent_cni_request_duration_seconds",
			Help:    "Time the agent took to answer a CNI plugin request (an ADD includes waiting for the annotation).",
			Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"op"}),
	}
	gauge := func(name, help string, labels prometheus.Labels, value func(PoolStats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(value(pool.Stats())) })
	}
	counter := func(name, help string, value func(PoolStats) int) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(value(pool.Stats())) })
	}
	reg.MustRegister(m.requests, m.duration,
		gauge("podsg_agent_pod_ips", "Secondary IPs of the node's ENIs in the pod IP pool, by state.", prometheus.Labels{"state": "free"},
			func(s PoolStats) int { return s.Free }),
		gauge("podsg_agent_pod_ips", "Secondary IPs of the node's ENIs in the pod IP pool, by state.", prometheus.Labels{"state": "used"},
			func(s PoolStats) int { return s.Used }),
		gauge("podsg_agent_pod_ips", "Secondary IPs of the node's ENIs in the pod IP pool, by state.", prometheus.Labels{"state": "cooling"},
			func(s PoolStats) int { return s.Cooling }),
		gauge("podsg_agent_enis", "ENIs whose secondary IPs the pod IP pool hands out, the primary included.", nil,
			func(s PoolStats) int { return s.ENIs }),
		counter("podsg_agent_pod_ips_unassigned_total", "Free secondary IPs the pod IP pool gave back to EC2 (UnassignPrivateIpAddresses) because they were above its warm targets.",
			func(s PoolStats) int { return s.Unassigned }),
		counter("podsg_agent_enis_deleted_total", "ENIs the pod IP pool detached and deleted because no pod used them and its warm targets did not need them.",
			func(s PoolStats) int { return s.DeletedENIs }))
	return m
}
