package server

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// injector applies fault rules. It counts calls per rule and draws from a
// seeded RNG so a profile reproduces the same failures.
type injector struct {
	mu    sync.Mutex
	rules []FaultRule
	calls []int
	rng   *rand.Rand
	start time.Time
}

func newInjector(cfg Faults, start time.Time) *injector {
	return &injector{
		rules: cfg.Rules,
		calls: make([]int, len(cfg.Rules)),
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), //nolint:gosec // fault injection must be reproducible from the seed, not unpredictable
		start: start,
	}
}

// check returns the injected error for this call, or nil.
func (f *injector) check(action string, now time.Time) *apierr.Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, r := range f.rules {
		if r.Action != "*" && r.Action != action {
			continue
		}
		f.calls[i]++
		if f.fires(r, f.calls[i], now) {
			return faultError(r)
		}
	}
	return nil
}

func (f *injector) fires(r FaultRule, call int, now time.Time) bool {
	if r.Nth > 0 {
		times := max(r.Times, 1)
		return call >= r.Nth && call < r.Nth+times
	}
	since := now.Sub(f.start)
	if since < r.After.Duration || (r.For.Duration > 0 && since >= r.After.Duration+r.For.Duration) {
		return false
	}
	return f.rng.Float64() < r.Probability
}

func faultError(r FaultRule) *apierr.Error {
	status := r.Status
	if status == 0 {
		switch r.Code {
		case apierr.CodeInternalError:
			status = http.StatusInternalServerError
		case apierr.CodeUnavailable, apierr.CodeRequestLimitExceeded, "ServiceUnavailable":
			status = http.StatusServiceUnavailable
		default:
			status = http.StatusBadRequest
		}
	}
	msg := r.Message
	if msg == "" {
		msg = "Injected fault."
	}
	return &apierr.Error{Code: r.Code, Message: msg, Status: status}
}
