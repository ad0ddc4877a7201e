package server

import (
	"strings"
	"sync"
	"time"

	"github.com/podsg/podsg/internal/vpc/query"
)

// tokenBucket is EC2's throttling model: a request takes one token; the
// bucket refills continuously up to its capacity.
type tokenBucket struct {
	Bucket
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens, b.last = b.Capacity, now
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(b.Capacity, b.tokens+elapsed*b.RefillPerSecond)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// throttler picks the bucket for a request and takes a token from it.
type throttler struct {
	mu      sync.Mutex
	cfg     Throttle
	buckets map[string]*tokenBucket
}

func newThrottler(cfg Throttle) *throttler {
	return &throttler{cfg: cfg, buckets: map[string]*tokenBucket{}}
}

// allow reports whether the request may proceed.
func (t *throttler) allow(action string, p query.Params, now time.Time) bool {
	key, cfg := t.bucketFor(action, p)
	if cfg == nil {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buckets[key]
	if b == nil {
		b = &tokenBucket{Bucket: *cfg}
		t.buckets[key] = b
	}
	return b.take(now)
}

func (t *throttler) bucketFor(action string, p query.Params) (string, *Bucket) {
	if b, ok := t.cfg.Actions[action]; ok {
		return "action/" + action, &b
	}
	if query.Mutating(action) {
		return "mutating", t.cfg.Mutating
	}
	if t.cfg.UnfilteredNonMutating != nil && unfiltered(p) {
		return "unfilteredNonMutating", t.cfg.UnfilteredNonMutating
	}
	return "nonMutating", t.cfg.NonMutating
}

// unfiltered is a describe without ids, filters or pagination.
func unfiltered(p query.Params) bool {
	for k := range p {
		if strings.HasPrefix(k, "Filter.") || k == "MaxResults" || strings.HasSuffix(k, "Id.1") || strings.HasSuffix(k, "Name.1") {
			return false
		}
	}
	return true
}
