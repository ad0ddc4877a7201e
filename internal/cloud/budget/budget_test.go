package budget

import (
	"context"
	"errors"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/podsg/podsg/internal/cloud"
)

var t0 = time.Unix(1000, 0)

func bucket(t *testing.T, rate float64, burst int) (*Bucket, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	b, err := New(clk, rate, burst)
	if err != nil {
		t.Fatal(err)
	}
	return b, clk
}

// TestAdmit: who may take a token, by the tokens left, the burst and who else waits.
func TestAdmit(t *testing.T) {
	tests := map[string]struct {
		tokens   float64
		waiting  [priorities]int
		purpose  cloud.Purpose
		want     bool
		wantWait time.Duration
	}{
		"a pod takes the last token":              {tokens: 1, purpose: cloud.PurposePod, want: true},
		"a node's trunk is pod work":              {tokens: 1, purpose: cloud.PurposeNode, want: true},
		"a caller naming no purpose is too":       {tokens: 1, purpose: cloud.PurposeOther, want: true},
		"a pod waits for the next token":          {tokens: 0.5, purpose: cloud.PurposePod, wantWait: 100 * time.Millisecond},
		"an update leaves a quarter of the burst": {tokens: 3, purpose: cloud.PurposeUpdate, wantWait: 100 * time.Millisecond},
		"an update takes beyond it":               {tokens: 3.5, purpose: cloud.PurposeUpdate, want: true},
		"warming leaves half of the burst":        {tokens: 5.5, purpose: cloud.PurposeWarm, wantWait: 100 * time.Millisecond},
		"warming takes beyond it":                 {tokens: 6, purpose: cloud.PurposeWarm, want: true},
		"cleanup leaves half of the burst":        {tokens: 5, purpose: cloud.PurposeCleanup, wantWait: 200 * time.Millisecond},
		"warming waits while a pod waits": {tokens: 10, waiting: [priorities]int{prioPod: 1}, purpose: cloud.PurposeWarm,
			wantWait: time.Second},
		"cleanup waits while warming waits": {tokens: 10, waiting: [priorities]int{prioWarm: 1}, purpose: cloud.PurposeCleanup,
			wantWait: time.Second},
		"a pod never waits for background work": {tokens: 1, waiting: [priorities]int{prioUpdate: 1, prioWarm: 2, prioCleanup: 3},
			purpose: cloud.PurposePod, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, _ := bucket(t, 5, 10)
			b.tokens, b.waiting = tc.tokens, tc.waiting
			ok, wait := b.admit(t0, priority(tc.purpose))
			if ok != tc.want || wait.Round(time.Millisecond) != tc.wantWait {
				t.Fatalf("admit = %v, wait %v; want %v, wait %v", ok, wait, tc.want, tc.wantWait)
			}
		})
	}
}

// TestReserveBelowBurst: a tiny burst still lets background work through, one token at a time.
func TestReserveBelowBurst(t *testing.T) {
	b, _ := bucket(t, 1, 1)
	if !b.Spare(cloud.PurposeCleanup) {
		t.Fatal("a full bucket of one token must serve cleanup")
	}
}

// TestThrottled: EC2 throttling halves the rate (to a floor) and empties the bucket; the rate
// comes back additively.
func TestThrottled(t *testing.T) {
	b, clk := bucket(t, 8, 10)
	b.Throttled()
	if r, tok := b.Rate(), b.Tokens(); r != 4 || tok != 0 {
		t.Fatalf("after one throttle: rate %v, tokens %v; want 4, 0", r, tok)
	}
	for range 10 {
		b.Throttled()
	}
	if r := b.Rate(); r != 0.5 {
		t.Fatalf("rate after many throttles %v, want the floor 0.5", r)
	}
	clk.Step(time.Second)
	if r := b.Rate(); r != 0.9 {
		t.Fatalf("rate a second later %v, want 0.9 (a twentieth of 8 won back)", r)
	}
	clk.Step(time.Minute)
	if r, tok := b.Rate(), b.Tokens(); r != 8 || tok != 10 {
		t.Fatalf("a minute later: rate %v, tokens %v; want 8, 10", r, tok)
	}
}

// TestWaitOrder: with the bucket empty, waiting cleanup, warm and pod calls get their tokens
// pod first, then warm, then cleanup, as the bucket refills.
func TestWaitOrder(t *testing.T) {
	b, clk := bucket(t, 10, 4)
	b.tokens = 0
	got := make(chan cloud.Purpose, 3)
	start := func(p cloud.Purpose, prio, waiters int) {
		go func() {
			if err := b.Wait(t.Context(), p); err != nil {
				t.Error(err)
			}
			got <- p
		}()
		waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return b.waiting[prio] == waiters })
	}
	start(cloud.PurposeCleanup, prioCleanup, 1)
	start(cloud.PurposeWarm, prioWarm, 1)
	start(cloud.PurposePod, prioPod, 1)
	var order []cloud.Purpose
	for len(order) < 3 {
		select {
		case p := <-got:
			order = append(order, p)
		default:
			clk.Step(10 * time.Millisecond)
		}
	}
	want := []cloud.Purpose{cloud.PurposePod, cloud.PurposeWarm, cloud.PurposeCleanup}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}

// TestWaitCancelled: a cancelled wait returns the context's error and lets the next go.
func TestWaitCancelled(t *testing.T) {
	b, _ := bucket(t, 1, 1)
	b.tokens = 0
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.Wait(ctx, cloud.PurposePod); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	if b.waiting[prioPod] != 0 {
		t.Fatal("the cancelled waiter is still counted")
	}
}

func TestNewRefusesNoBudget(t *testing.T) {
	for _, c := range []struct {
		rate  float64
		burst int
	}{{0, 10}, {5, 0}} {
		if _, err := New(clocktesting.NewFakeClock(t0), c.rate, c.burst); err == nil {
			t.Errorf("New(%v, %d) accepted", c.rate, c.burst)
		}
	}
}

// waitFor polls cond, a state another goroutine changes, for up to ten seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
