package trunk

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var nodeBranches = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: "podsg", Subsystem: "node", Name: "branch_enis",
	Help: "Branch ENIs on a node's trunk, by state (in_use, cooling).",
}, []string{"node", "state"})

func init() {
	crmetrics.Registry.MustRegister(nodeBranches)
}
