package controllertest

import (
	"context"
	"testing"

	"github.com/go-logr/logr/testr"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/testenv"
	podsgwebhook "github.com/podsg/podsg/internal/webhook"
)

// ControllerUsername is the identity test managers run as (podsg-controller's default).
const ControllerUsername = "system:serviceaccount:podsg-system:podsg-controller"

// NewManager returns a manager on env's control plane with metrics off and, when env
// registered webhooks, a webhook server where the apiserver expects it. Register controllers
// and webhooks on it, then call Start.
func NewManager(t testing.TB, env *testenv.Env) manager.Manager {
	t.Helper()
	opts := ctrl.Options{
		Scheme:                 env.Scheme,
		Cache:                  controller.CacheOptions(), // as podsg-controller runs
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Logger:                 testr.NewWithInterface(t, testr.Options{Verbosity: 0}),
	}
	if w := env.Webhooks; w != nil && w.LocalServingPort != 0 {
		opts.WebhookServer = podsgwebhook.NewServer(webhook.Options{ // HTTP/1.1, as podsg-controller serves
			Host: w.LocalServingHost, Port: w.LocalServingPort, CertDir: w.LocalServingCertDir,
		})
	}
	// Controllers of several tests share one process; names must not collide across managers.
	skip := true
	opts.Controller.SkipNameValidation = &skip
	// Run as the identity the shipped deployment has, which the validating webhook lets write
	// the pod annotations.
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: ControllerUsername, Groups: []string{"system:masters", "system:authenticated"}}
	mgr, err := ctrl.NewManager(cfg, opts)
	if err != nil {
		t.Fatalf("creating a manager: %v", err)
	}
	return mgr
}

// Start runs mgr until the test ends and waits for its caches.
func Start(t testing.TB, mgr manager.Manager) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("caches did not sync")
	}
}
