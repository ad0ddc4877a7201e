package webhook

import (
	"context"
	"io"
	"net/http"
	"runtime/trace"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// DurationBuckets are podsg_webhook_duration_seconds' buckets: fine below 10 ms, where a
// webhook every pod creation waits on must stay (the scale goal is a p99 under 5 ms), so that
// a p99 read from them means something; controller-runtime's own histogram has one bucket
// per decade (1 ms, 10 ms).
var DurationBuckets = []float64{.00025, .0005, .001, .002, .003, .004, .005, .0075, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Trace regions of every webhook call, seen in an execution trace (/debug/pprof/trace with
// --pprof-addr): the call, and within it the reading of the request's body, which arrives
// after the headers that start the handler and so may be waited for.
const (
	RegionCall = "podsg webhook call"
	RegionBody = "podsg webhook request body"
)

// Timed returns srv with every handler registered on it timed, by path, in
// podsg_webhook_duration_seconds on reg: from the request reaching the handler to the answer
// written, the AdmissionReview's decoding and the patch's encoding included.
func Timed(srv crwebhook.Server, reg prometheus.Registerer) (crwebhook.Server, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "podsg_webhook_duration_seconds",
		Help:    "Time podsg-controller's admission webhooks take to answer, by path.",
		Buckets: DurationBuckets,
	}, []string{"path"})
	if err := reg.Register(h); err != nil {
		return nil, err
	}
	return timedServer{Server: srv, durations: h}, nil
}

type timedServer struct {
	crwebhook.Server
	durations *prometheus.HistogramVec
}

func (s timedServer) Register(path string, hook http.Handler) {
	observe := s.durations.WithLabelValues(path)
	s.Server.Register(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx, task := trace.NewTask(r.Context(), RegionCall)
		trace.Log(ctx, "path", path)
		region := trace.StartRegion(ctx, RegionCall)
		r = r.WithContext(ctx)
		var body *tracedBody
		if r.Body != nil && r.Body != http.NoBody {
			body = &tracedBody{ReadCloser: r.Body, ctx: ctx}
			r.Body = body
		}
		defer func() {
			if body != nil {
				body.end() // nested in the call's region: ended first
			}
			region.End()
			task.End()
		}()
		hook.ServeHTTP(w, r)
		observe.Observe(time.Since(start).Seconds())
	}))
}

// tracedBody is a request body whose reading, from the first Read to its end, is a trace
// region: the time the handler waits for the request's bytes.
type tracedBody struct {
	io.ReadCloser
	ctx    context.Context
	region *trace.Region
	done   bool
}

func (b *tracedBody) Read(p []byte) (int, error) {
	if b.region == nil && !b.done {
		b.region = trace.StartRegion(b.ctx, RegionBody)
	}
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

func (b *tracedBody) Close() error {
	b.end()
	return b.ReadCloser.Close()
}

// end ends the region once.
func (b *tracedBody) end() {
	if b.region != nil {
		b.region.End()
		b.region = nil
	}
	b.done = true
}
