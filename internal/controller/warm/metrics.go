package warm

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var warmed = prometheus.NewCounter(prometheus.CounterOpts{
	Namespace: "podsg", Subsystem: "warm", Name: "branches_made_total",
	Help: "Branch ENIs the warmer made ahead of pods (created and associated).",
})

// RegisterMetrics registers the warmer's metrics on reg; podsg-controller calls it once.
func RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(warmed); err != nil {
		return fmt.Errorf("registering the warmer's metrics: %w", err)
	}
	return nil
}
