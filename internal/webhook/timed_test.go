package webhook

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
)

// recordingServer is a webhook server that only keeps what is registered on it.
type recordingServer struct {
	crwebhook.Server // nil: calling anything but Register panics
	hooks            map[string]http.Handler
}

func (s *recordingServer) Register(path string, hook http.Handler) { s.hooks[path] = hook }

// TestTimedObservesEveryCallByPath: each call of a handler registered through Timed is one
// observation under its own path, and the handler still answers.
func TestTimedObservesEveryCallByPath(t *testing.T) {
	rec := &recordingServer{hooks: map[string]http.Handler{}}
	reg := prometheus.NewRegistry()
	srv, err := Timed(rec, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv.Register(MutatePath, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	srv.Register(ValidatePath, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 3 {
		w := httptest.NewRecorder()
		rec.hooks[MutatePath].ServeHTTP(w, httptest.NewRequest(http.MethodPost, MutatePath, nil))
		if w.Code != http.StatusTeapot {
			t.Fatalf("the timed handler answered %d, want the handler's %d", w.Code, http.StatusTeapot)
		}
	}
	rec.hooks[ValidatePath].ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, ValidatePath, nil))
	for path, want := range map[string]int{MutatePath: 3, ValidatePath: 1, IdentityPath: 0} {
		if got := testutil.CollectAndCount(reg, "podsg_webhook_duration_seconds"); got != 2 {
			t.Fatalf("%d series, want one per registered path (2)", got)
		}
		var n uint64
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == path {
					n = m.GetHistogram().GetSampleCount()
				}
			}
		}
		if n != uint64(want) {
			t.Errorf("%s: %d observations, want %d", path, n, want)
		}
	}
}
