package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// EventuallyTimeout is Eventually's timeout when it is given 0: generous because 2-core CI
// machines are slow, and a test that waits this long has failed anyway.
const EventuallyTimeout = 60 * time.Second

// pollInterval is how often Eventually and Consistently look.
const pollInterval = 50 * time.Millisecond

// Eventually polls cond until it returns nil, and fails the test with cond's last error once
// timeout (EventuallyTimeout when 0) has passed (the error of a look that the deadline cut short
// is not the news: the look before it is reported). An error made by Abort fails the test at once:
// for a state that can no longer change (the process under test has exited). Tests wait on
// observable state with it, never with sleeps.
func Eventually(t testing.TB, timeout time.Duration, cond func(ctx context.Context) error) {
	t.Helper()
	if timeout == 0 {
		timeout = EventuallyTimeout
	}
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), pollInterval, timeout, true, func(ctx context.Context) (bool, error) {
		got := cond(ctx)
		// A look cut short by the deadline itself (a command killed mid-way) is not news: the
		// look before says what was still wrong.
		if got == nil || last == nil || ctx.Err() == nil {
			last = got
		}
		if errors.Is(last, errAbort) {
			return false, last
		}
		return last == nil, nil
	})
	switch {
	case err == nil:
	case errors.Is(last, errAbort):
		t.Fatal(last)
	default:
		t.Fatalf("condition not met within %s: %v", timeout, last)
	}
}

var errAbort = errors.New("gave up waiting")

// Abort makes err end Eventually at once.
func Abort(err error) error { return fmt.Errorf("%w: %w", errAbort, err) }

// Consistently fails the test if cond returns an error at any look during d: the one place a
// test watches time pass rather than a change, to show that something does not happen.
func Consistently(t testing.TB, d time.Duration, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(t.Context()); err != nil {
			t.Fatalf("condition broken: %v", err)
		}
		time.Sleep(pollInterval)
	}
}

// FreePort asks the kernel for a free loopback TCP port. A race with another process taking it
// is possible but harmless: what the test starts on it then fails to start and says why.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct free loopback TCP ports (held open together while they are
// chosen, so they differ).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		defer func() { _ = l.Close() }()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
