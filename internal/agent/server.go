package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/agentapi"
)

// serve answers the CNI plugin on a unix socket until ctx ends; listening runs once the
// socket accepts connections.
func serve(ctx context.Context, socket string, a *allocator, m *metrics, listening func()) error {
	log := logr.FromContextOrDiscard(ctx)
	if err := os.MkdirAll(filepath.Dir(socket), 0o700); err != nil {
		return fmt.Errorf("creating the socket dir: %w", err)
	}
	_ = os.Remove(socket) // left by an agent that did not stop cleanly
	l, err := net.Listen("unix", socket)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", socket, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+agentapi.PathAdd, handle(log, m, "add", func(ctx context.Context, req agentapi.AddRequest) (any, error) { return a.Add(ctx, req) }))
	mux.HandleFunc("POST "+agentapi.PathDel, handle(log, m, "del", func(ctx context.Context, req agentapi.DelRequest) (any, error) { return struct{}{}, a.Del(ctx, req) }))
	// Served only once start has loaded the pool: an answer means ADDs can be served.
	mux.HandleFunc("GET "+agentapi.PathStatus, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, struct{}{}) })
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("serving the CNI plugin", "socket", socket)
	listening()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving %s: %w", socket, err)
	}
	return nil
}

func handle[Req any](log logr.Logger, m *metrics, op string, fn func(context.Context, Req) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			m.requests.WithLabelValues(op, resultError).Inc()
			writeJSON(w, http.StatusBadRequest, &agentapi.Error{Message: "decoding the request: " + err.Error()})
			return
		}
		began := time.Now()
		out, err := fn(r.Context(), req)
		m.duration.WithLabelValues(op).Observe(time.Since(began).Seconds())
		if err != nil {
			var re retryable
			status, result := http.StatusInternalServerError, resultError
			if errors.As(err, &re) {
				status, result = http.StatusServiceUnavailable, resultRetry
			}
			m.requests.WithLabelValues(op, result).Inc()
			log.Info("request failed", "path", r.URL.Path, "request", req, "error", err.Error())
			writeJSON(w, status, &agentapi.Error{Message: err.Error(), Retryable: errors.As(err, &re)})
			return
		}
		m.requests.WithLabelValues(op, resultOK).Inc()
		writeJSON(w, http.StatusOK, out)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
