// Package controllertest holds what podsg's controller and webhook tests share: polling on
// observable state, a manager wired to a testenv control plane, and fixtures.
package controllertest

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Eventually polls cond every 50ms until it returns nil, failing the test with the last error
// after timeout. Tests synchronise on observable state through it, never on sleeps.
func Eventually(t testing.TB, timeout time.Duration, cond func(ctx context.Context) error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		err := cond(ctx)
		// A poll the deadline cut short says only that: keep what the one before found.
		if err == nil || ctx.Err() == nil || last == nil {
			last = err
		}
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("condition not met within %s: %v", timeout, last)
	}
}

// Consistently fails the test if cond returns an error at any poll during d.
func Consistently(t testing.TB, d time.Duration, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := cond(t.Context()); err != nil {
			t.Fatalf("condition broken: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
