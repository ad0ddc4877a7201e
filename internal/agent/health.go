package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// serveHealth serves healthHandler on addr (TCP) until ctx ends, then shuts down gracefully
// like the CNI server (serve): requests in flight get 5 s to finish. It returns nil when ctx
// ends, and an error naming addr when it cannot listen, so that a port taken by another
// process stops the agent at start instead of leaving it unprobed.
func serveHealth(ctx context.Context, addr string, gatherer prometheus.Gatherer, ready func() error) error {
	var lc net.ListenConfig
	// Not ctx itself: a context that ended already means a clean stop (nil), not a failed listen.
	l, err := lc.Listen(context.WithoutCancel(ctx), "tcp", addr)
	if err != nil {
		return fmt.Errorf("listening for health and metrics on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: healthHandler(gatherer, ready), ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
		case <-stop: // Serve failed on its own: nothing to shut down
			return
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	// The bound address, not addr: with port 0 (tests) this is the only place it shows.
	logr.FromContextOrDiscard(ctx).Info("serving /healthz, /readyz and /metrics", "addr", l.Addr().String())
	err = srv.Serve(l)
	// Serve returns as soon as Shutdown starts; wait for the requests in flight.
	close(stop)
	<-stopped
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving health and metrics on %s: %w", addr, err)
	}
	return nil
}

// healthHandler answers kubelet's probes and Prometheus:
//   - /healthz: 200 whenever the process answers HTTP at all. Liveness must not depend on EC2
//     or the API server: a restart fixes neither, and while the agent restarts ADDs fail.
//   - /readyz: 200 when ready returns nil (nil ready means always ready), else 503 with its
//     error, so that `kubectl describe pod` shows why a rollout waits. ready runs on every
//     probe and must be cheap.
//   - /metrics: the gatherer's metrics (podsg_*), in Prometheus' text or protobuf format.
func healthHandler(gatherer prometheus.Gatherer, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil {
			if err := ready(); err != nil {
				writeText(w, http.StatusServiceUnavailable, err.Error())
				return
			}
		}
		writeText(w, http.StatusOK, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	return mux
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
