package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/controller/branch"
	"github.com/podsg/podsg/internal/controller/trunk"
	"github.com/podsg/podsg/internal/controller/warm"
)

// registerMetrics registers the controllers' metrics on reg. Run calls it once per process,
// on the registry its manager serves: metrics register where the manager is built, never in
// an init() that every importer of a controller package would run.
func registerMetrics(reg prometheus.Registerer) error {
	for _, register := range []func(prometheus.Registerer) error{branch.RegisterMetrics, trunk.RegisterMetrics, warm.RegisterMetrics} {
		if err := register(reg); err != nil {
			return err
		}
	}
	return nil
}
