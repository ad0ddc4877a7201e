package query

import (
	"context"
	"slices"
	"strings"
)

// Request is one decoded API call.
type Request struct {
	Action    string
	RequestID string
	Params    Params
	// Caller is who signed the request (set by the server).
	Caller Caller
}

// DryRun reports whether the caller asked for a permission check only.
func (r *Request) DryRun() (bool, error) {
	v, _, err := r.Params.Bool("DryRun")
	return v, err
}

// Handler serves one action.
type Handler func(ctx context.Context, req *Request) (Response, error)

// Router maps action names to handlers.
type Router struct {
	handlers map[string]Handler
}

// NewRouter returns an empty router.
func NewRouter() *Router { return &Router{handlers: map[string]Handler{}} }

// Handle registers the handler for an action; registering twice is a bug.
func (r *Router) Handle(action string, h Handler) {
	if _, dup := r.handlers[action]; dup {
		panic("query: duplicate handler for " + action)
	}
	r.handlers[action] = h
}

// Lookup returns the action's handler.
func (r *Router) Lookup(action string) (Handler, bool) {
	h, ok := r.handlers[action]
	return h, ok
}

// Actions lists registered actions in name order.
func (r *Router) Actions() []string {
	out := make([]string, 0, len(r.handlers))
	for a := range r.handlers {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Mutating classifies an action the way EC2 throttling does: Describe* and
// Get* calls are non-mutating, everything else mutates.
func Mutating(action string) bool {
	return !strings.HasPrefix(action, "Describe") && !strings.HasPrefix(action, "Get")
}
