package fake

import "github.com/podsg/podsg/internal/cloud"

// faults holds pending error injections. Its zero value injects nothing.
type faults struct {
	next   map[string][]fault
	every  map[string]everyFault
	counts map[string]int
	storm  int // remaining calls of any action that fail throttled
}

type fault struct {
	err   error
	after bool // apply the effect, then fail: the response was lost
}

type everyFault struct {
	n   int
	err error
}

// NextError makes the next call of action fail with err, before any effect. Several calls
// queue up in order.
func (f *EC2) NextError(action string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue(action, fault{err: err})
}

// NextErrorAfterEffect makes the next call of action take effect and then fail with err, as
// when EC2 succeeded but the response never reached the caller (a timeout). Retrying with the
// same ClientToken must then return the resource created the first time.
func (f *EC2) NextErrorAfterEffect(action string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue(action, fault{err: err, after: true})
}

// FailEvery makes every nth call of action fail with err (n <= 0 stops it).
func (f *EC2) FailEvery(action string, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.every == nil {
		f.every = map[string]everyFault{}
	}
	if n <= 0 {
		delete(f.every, action)
		return
	}
	f.every[action] = everyFault{n: n, err: err}
}

// ThrottleStorm makes the next n calls, of any action, fail with RequestLimitExceeded.
func (f *EC2) ThrottleStorm(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storm = n
}

// Throttled returns the error EC2 gives when the account's request rate is exceeded.
func Throttled(action string) error {
	return apiErr(action, "RequestLimitExceeded", cloud.ErrThrottled, "Request limit exceeded.")
}

// Unavailable returns EC2's 5xx error.
func Unavailable(action string) error {
	return apiErr(action, "InternalError", cloud.ErrUnavailable, "An internal error has occurred")
}

func (fs *faults) queue(action string, flt fault) {
	if fs.next == nil {
		fs.next = map[string][]fault{}
	}
	fs.next[action] = append(fs.next[action], flt)
}

// take returns the fault for this call of action, if any.
func (fs *faults) take(action string) fault {
	if fs.counts == nil {
		fs.counts = map[string]int{}
	}
	fs.counts[action]++
	if q := fs.next[action]; len(q) > 0 {
		fs.next[action] = q[1:]
		return q[0]
	}
	if fs.storm > 0 {
		fs.storm--
		return fault{err: Throttled(action)}
	}
	if e, ok := fs.every[action]; ok && fs.counts[action]%e.n == 0 {
		return fault{err: e.err}
	}
	return fault{}
}
