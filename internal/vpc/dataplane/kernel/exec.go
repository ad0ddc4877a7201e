package kernel

import (
	"fmt"
	"os/exec"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// Start starts cmd in the instance's namespace (the future `podsg-vpc
// exec`); the caller waits for it. It needs no running server.
func Start(names topo.Names, instanceID string, cmd *exec.Cmd) error {
	ns := names.Instance(instanceID)
	if !namespace.Exists(ns) {
		return fmt.Errorf("instance %s has no namespace (not running, or no netns data path)", instanceID)
	}
	if err := namespace.Start(ns, cmd); err != nil {
		return fmt.Errorf("starting %s in %s: %w", cmd.Path, instanceID, err)
	}
	return nil
}

// Exec runs cmd in the instance's namespace and waits for it.
func (d *Dataplane) Exec(instanceID string, cmd *exec.Cmd) error {
	if err := Start(d.names, instanceID, cmd); err != nil {
		return err
	}
	return cmd.Wait()
}
