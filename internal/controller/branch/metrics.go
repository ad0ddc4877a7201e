package branch

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	allocationSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "podsg", Name: "pod_eni_allocation_seconds",
		Help:    "Time from a pod's binding to a node until its vpc.amazonaws.com/pod-eni annotation was written.",
		Buckets: prometheus.ExponentialBuckets(0.1, 2, 14),
	})
	allocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "podsg", Name: "branch_allocations_total",
		Help: "Branch ENIs given to pods, by source: new (created and associated), parked (left by an earlier pod, after its cool-down) or warm (made ahead of pods).",
	}, []string{"source"})
	updated = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "podsg", Name: "branch_groups_updated_total",
		Help: "Running pods whose branch ENI's groups were changed in place (updatePolicy InPlace).",
	})
	orphansDeleted = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "podsg", Subsystem: "sweeper", Name: "orphan_enis_deleted_total",
		Help: "ENIs tagged for this cluster that the sweeper deleted because nothing owned them.",
	})
)

// RegisterMetrics registers the branch controller's and the sweeper's metrics on reg.
// podsg-controller calls it once, where it builds its manager: importing the package registers
// nothing.
func RegisterMetrics(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{allocationSeconds, allocations, updated, orphansDeleted} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("registering the branch controller's metrics: %w", err)
		}
	}
	return nil
}
