package controller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The controllers' metrics, by fully qualified name.
var controllerMetrics = []string{
	"podsg_pod_eni_allocation_seconds",
	"podsg_sweeper_orphan_enis_deleted_total",
	"podsg_node_branch_enis",
	"podsg_branch_allocations_total",
	"podsg_branch_groups_updated_total",
	"podsg_warm_branches_made_total",
}

// registered reports whether reg holds a metric named name: a probe of that name is refused.
func registered(t *testing.T, reg prometheus.Registerer, name string) bool {
	t.Helper()
	probe := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "probe"})
	if err := reg.Register(probe); err != nil {
		return true
	}
	reg.Unregister(probe)
	return false
}

// TestMetricsRegisterWhereTheManagerIsBuilt: importing the controller packages (this test
// binary does) registers nothing on controller-runtime's registry; registerMetrics, which Run
// calls, registers every metric once.
func TestMetricsRegisterWhereTheManagerIsBuilt(t *testing.T) {
	for _, name := range controllerMetrics {
		if registered(t, crmetrics.Registry, name) {
			t.Errorf("%s is registered by importing its package", name)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	for _, name := range controllerMetrics {
		if !registered(t, reg, name) {
			t.Errorf("registerMetrics did not register %s", name)
		}
	}
	if err := registerMetrics(reg); err == nil {
		t.Error("registering twice on one registry must fail, not count twice")
	}
}
