package dataplane

import (
	"context"
	"fmt"

	"github.com/podsg/podsg/internal/vpc/state"
)

// Dataplane makes the network reflect the VPC state. Apply is called with
// the whole committed state (Snapshot.Changes says what the last
// transaction touched, nil meaning everything), serially, once at start and
// after every mutation, before the mutating API call is answered; so a
// successful EC2 response means the data path already reflects it. An error
// becomes InternalError for that call; the mutation stays committed and the
// next Apply is expected to converge.
type Dataplane = state.Applier

// None is the no-op data path: API and state only.
type None struct{}

// Apply implements Dataplane.
func (None) Apply(context.Context, *state.Snapshot) error { return nil }

var _ Dataplane = None{}

// New returns the data path named by the --dataplane flag.
func New(name string) (Dataplane, error) {
	switch name {
	case "", "none":
		return None{}, nil
	}
	return nil, fmt.Errorf("unknown dataplane %q (supported: none)", name)
}
