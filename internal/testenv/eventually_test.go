package testenv_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/testenv"
)

// fatalRecorder is a testing.TB whose Fatal/Fatalf record the message and end the goroutine,
// as the real ones do, so that a test can read what Eventually would have failed with.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// failureOf runs Eventually on a recorder in a goroutine of its own and returns its failure.
func failureOf(t *testing.T, timeout time.Duration, cond func(ctx context.Context) error) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		testenv.Eventually(r, timeout, cond)
	}()
	<-done
	return r.msg
}

// TestEventuallyReportsTheLastLookNotTheDeadline: a look that the deadline cuts short (a
// command killed mid-way) fails with "killed"; the look before it is the news.
func TestEventuallyReportsTheLastLookNotTheDeadline(t *testing.T) {
	looks := 0
	msg := failureOf(t, 300*time.Millisecond, func(ctx context.Context) error {
		looks++
		if looks < 3 {
			return fmt.Errorf("pod web not running yet: phase Pending (look %d)", looks)
		}
		<-ctx.Done() // the slow look: the deadline ends it
		return fmt.Errorf("kubectl get pod web: signal: killed: %w", ctx.Err())
	})
	if !strings.Contains(msg, "phase Pending (look 2)") || strings.Contains(msg, "killed") {
		t.Errorf("Eventually failed with %q, want the last look before the deadline (look 2)", msg)
	}

	// A condition whose only look is the one the deadline cut short still reports it.
	msg = failureOf(t, 100*time.Millisecond, func(ctx context.Context) error {
		<-ctx.Done()
		return fmt.Errorf("kubectl get pod web: signal: killed: %w", ctx.Err())
	})
	if !strings.Contains(msg, "killed") {
		t.Errorf("Eventually failed with %q, want the only look's error", msg)
	}
	if msg := failureOf(t, time.Second, func(context.Context) error { return nil }); msg != "" {
		t.Errorf("a condition met at once failed: %q", msg)
	}
}
