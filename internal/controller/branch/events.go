package branch

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	allocationSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "podsg", Name: "pod_eni_allocation_seconds",
		Help:    "Time from a pod's binding to a node until its vpc.amazonaws.com/pod-eni annotation was written.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
	})
	orphansDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "podsg", Subsystem: "sweeper", Name: "orphan_enis_deleted_total",
		Help: "ENIs tagged for this cluster that the sweeper deleted because nothing owned them.",
	})
)

func init() {
	crmetrics.Registry.MustRegister(allocationSeconds, orphansDeleted)
}
