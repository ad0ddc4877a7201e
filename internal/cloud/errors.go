package cloud

import (
	"errors"
	"fmt"
)

// Error kinds. Every error an EC2 call returns wraps exactly one of them (or none, for
// transport errors), so callers decide retry, backoff or report with errors.Is.
var (
	// ErrNotFound: the resource does not exist (InvalidXxx.NotFound).
	ErrNotFound = errors.New("not found")
	// ErrThrottled: EC2 asked us to slow down (RequestLimitExceeded, Throttling); retry later.
	ErrThrottled = errors.New("throttled")
	// ErrQuota: a limit was reached (addresses in a subnet, ENIs per instance, SGs per ENI...).
	// Retrying the same call will not help until something is freed.
	ErrQuota = errors.New("quota exceeded")
	// ErrConflict: the resource is in a state that forbids the call (in use, duplicate,
	// dependency violation); it may resolve itself.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request itself is wrong (bad parameter, malformed id); never retry.
	ErrInvalid = errors.New("invalid request")
	// ErrUnavailable: EC2 failed on its side (5xx); retry with backoff.
	ErrUnavailable = errors.New("service unavailable")
)

// APIError is an EC2 error response, classified.
type APIError struct {
	Op      string // the EC2 action, e.g. CreateNetworkInterface
	Code    string // the EC2 error code, e.g. InvalidGroup.NotFound
	Message string
	Kind    error // one of the Err* kinds above, or nil if unclassified
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Op, e.Code, e.Message)
}

// Is makes errors.Is(err, cloud.ErrNotFound) and friends work.
func (e *APIError) Is(target error) bool { return e.Kind != nil && target == e.Kind }

// Code returns the EC2 error code carried by err, or "".
func Code(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// IgnoreNotFound returns nil for ErrNotFound errors and err otherwise.
func IgnoreNotFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}
