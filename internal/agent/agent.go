package agent

import (
	"context"
	"errors"
)

// Options configure the node agent.
type Options struct {
	Kubeconfig   string
	NodeName     string
	EnablePodENI bool
}

// ErrNotImplemented is returned until the node agent issue lands.
var ErrNotImplemented = errors.New("podsg-agent is not implemented yet: it lands with the issue 'Node agent and CNI plugin'")

// Run runs the node agent until ctx ends.
func Run(_ context.Context, _ Options) error {
	return ErrNotImplemented
}
