// Package budget is podsg's client-side share of an AWS account's EC2 request budget: a token
// bucket like EC2's own (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html),
// shared by every EC2 call of one process, sized to leave the rest of the account's budget to
// its other users. It serves calls by the purpose their context carries (cloud.PurposeOf):
// pods first, then live updates, warm pools and cleanup, each of which only takes what the
// more urgent work leaves, and it slows down when EC2 throttles anyway (someone else spent the
// account's budget).
package budget

import (
	"context"
	"fmt"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/podsg/podsg/internal/cloud"
)

// Priorities, most urgent first.
const (
	prioPod = iota // pods, nodes, and callers that name no purpose
	prioUpdate
	prioWarm
	prioCleanup
	priorities
)

func priority(p cloud.Purpose) int {
	switch p {
	case cloud.PurposeUpdate:
		return prioUpdate
	case cloud.PurposeWarm:
		return prioWarm
	case cloud.PurposeCleanup:
		return prioCleanup
	default:
		return prioPod
	}
}

// reserveShare is the share of the burst each priority leaves in the bucket: a burst of pods
// arriving after background work finds its tokens there, so warming never delays a pod.
var reserveShare = [priorities]float64{prioPod: 0, prioUpdate: 0.25, prioWarm: 0.5, prioCleanup: 0.5}

// AIMD on throttling: halve the refill rate, down to a sixteenth, and win back a twentieth
// of the configured rate per second.
const (
	minRateShare     = 1.0 / 16
	recoverPerSecond = 1.0 / 20
)

// Bucket is a token bucket shared by calls of several purposes. Safe for concurrent use.
type Bucket struct {
	clock clock.Clock
	max   float64 // configured refill per second
	burst float64

	mu      sync.Mutex
	rate    float64 // current refill per second, lowered by throttling
	tokens  float64
	last    time.Time
	waiting [priorities]int
	wake    chan struct{} // closed, and replaced, whenever a waiter leaves
}

// New returns a full bucket refilling rate tokens per second up to burst.
func New(clk clock.Clock, rate float64, burst int) (*Bucket, error) {
	if rate <= 0 || burst < 1 {
		return nil, fmt.Errorf("an EC2 request budget needs a positive rate and a burst of at least 1, got %v and %d", rate, burst)
	}
	return &Bucket{clock: clk, max: rate, burst: float64(burst), rate: rate, tokens: float64(burst),
		last: clk.Now(), wake: make(chan struct{})}, nil
}

// Wait takes one token for a call of purpose p, waiting until p may have it: there is a token
// beyond what p must leave for more urgent work, and no more urgent call waits.
func (b *Bucket) Wait(ctx context.Context, p cloud.Purpose) error {
	prio := priority(p)
	b.mu.Lock()
	b.waiting[prio]++
	defer func() {
		b.waiting[prio]--
		close(b.wake)
		b.wake = make(chan struct{})
		b.mu.Unlock()
	}()
	for {
		ok, wait := b.admit(b.clock.Now(), prio)
		if ok {
			b.tokens--
			return nil
		}
		wake := b.wake
		b.mu.Unlock()
		t := b.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			b.mu.Lock()
			return fmt.Errorf("waiting for the EC2 request budget: %w", ctx.Err())
		case <-t.C():
		case <-wake:
			t.Stop()
		}
		b.mu.Lock()
	}
}

// admit refills the bucket up to now and decides whether a call of priority prio may take a
// token; if not, it says how long until one could (a more urgent waiter leaving wakes it
// earlier). Callers hold b.mu.
func (b *Bucket) admit(now time.Time, prio int) (bool, time.Duration) {
	b.refill(now)
	for higher := range prio {
		if b.waiting[higher] > 0 {
			return false, time.Second // until that waiter leaves
		}
	}
	need := 1 + b.reserve(prio)
	if b.tokens >= need {
		return true, 0
	}
	return false, time.Duration((need - b.tokens) / b.rate * float64(time.Second))
}

// reserve is what prio leaves in the bucket: a share of the burst, always below it.
func (b *Bucket) reserve(prio int) float64 { return min(reserveShare[prio]*b.burst, b.burst-1) }

// refill adds the tokens earned since the last refill and wins back rate lost to throttling.
func (b *Bucket) refill(now time.Time) {
	elapsed := now.Sub(b.last).Seconds()
	if elapsed <= 0 {
		return
	}
	b.tokens = min(b.burst, b.tokens+elapsed*b.rate)
	b.rate = min(b.max, b.rate+elapsed*b.max*recoverPerSecond)
	b.last = now
}

// Throttled is told that EC2 throttled a call anyway: other users of the account spend its
// budget too. It halves the refill rate (recovering over the next seconds) and empties the
// bucket, so that podsg backs off instead of adding to a retry storm.
func (b *Bucket) Throttled() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(b.clock.Now())
	b.rate = max(b.max*minRateShare, b.rate/2)
	b.tokens = min(b.tokens, 0)
}

// Spare reports whether a call of purpose p would get a token now without waiting: background
// work asks before it starts, so that it never queues behind pods.
func (b *Bucket) Spare(p cloud.Purpose) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	ok, _ := b.admit(b.clock.Now(), priority(p))
	return ok
}

// Tokens returns the tokens left now.
func (b *Bucket) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(b.clock.Now())
	return b.tokens
}

// Rate returns the current refill rate, per second.
func (b *Bucket) Rate() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(b.clock.Now())
	return b.rate
}
