package trunk

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

var nodeBranches = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: "podsg", Subsystem: "node", Name: "branch_enis",
	Help: "Branch ENIs on a node's trunk, by state: in_use (a pod's, or reserved for one), cooling (after its pod, before reuse), parked (idle after a pod), warm (idle, made ahead of pods), warming (being made).",
}, []string{"node", "state"})

// RegisterMetrics registers the trunk controller's metrics on reg. podsg-controller calls it
// once, where it builds its manager: importing the package registers nothing.
func RegisterMetrics(reg prometheus.Registerer) error {
	if err := reg.Register(nodeBranches); err != nil {
		return fmt.Errorf("registering the trunk controller's metrics: %w", err)
	}
	return nil
}
