package testenv

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// EventuallyTimeout bounds Eventually; generous because 2-core CI machines are slow, and a
// test that waits this long has failed anyway.
const EventuallyTimeout = 60 * time.Second

// Eventually polls cond every 50 ms until it returns true (nil), an error (that error), or
// EventuallyTimeout passes. Tests wait on observable state with it, never with sleeps.
func Eventually(ctx context.Context, cond func() (bool, error)) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, EventuallyTimeout, true, func(context.Context) (bool, error) {
		return cond()
	})
}
