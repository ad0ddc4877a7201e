package webhook

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// DurationBuckets are podsg_webhook_duration_seconds' buckets: fine below 10 ms, where a
// webhook every pod creation waits on must stay (the scale goal is a p99 under 5 ms), so that
// a p99 read from them means something; controller-runtime's own histogram has one bucket
// per decade (1 ms, 10 ms).
var DurationBuckets = []float64{.00025, .0005, .001, .002, .003, .004, .005, .0075, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

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
		hook.ServeHTTP(w, r)
		observe.Observe(time.Since(start).Seconds())
	}))
}
