package branch

import (
	"errors"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
)

// Action is what the controller does after an EC2 error.
type Action struct {
	// Report: the user can fix it (a missing group, a quota), so say it in a Warning event.
	Report bool
	// Reason is the event reason.
	Reason string
}

// Classify maps an EC2 error to an action. Every error is retried with the pod's capped
// exponential backoff, whatever its kind: a missing security group may be created, a quota
// may be raised, and a pod must never be stranded waiting for a resync. What differs is
// whether the user hears about it.
func Classify(err error) Action {
	switch {
	case errors.Is(err, cloud.ErrThrottled), errors.Is(err, cloud.ErrUnavailable), errors.Is(err, cloud.ErrConflict):
		return Action{}
	case errors.Is(err, cloud.ErrNotFound), errors.Is(err, cloud.ErrInvalid), errors.Is(err, cloud.ErrQuota):
		return Action{Report: true, Reason: v1beta1.ReasonAllocationFailed}
	default: // transport errors, timeouts: transient as far as we can tell
		return Action{}
	}
}
