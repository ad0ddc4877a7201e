package localcluster

import (
	"context"
	"os"
)

// StartFakeVPCAndController is the part of Up a test without root can do: record o's binary
// directories and start podsg-vpc and podsg-controller from o.BinDir with Up's arguments, as
// `up --host-processes` does (the mode it records).
func StartFakeVPCAndController(ctx context.Context, o Options) error {
	o.HostProcesses = true
	if err := o.absStateDir(); err != nil {
		return err
	}
	// No PostgreSQL here: the state dir need not be searchable by its user.
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return err
	}
	if err := o.remember(); err != nil {
		return err
	}
	if _, err := o.vpcDaemon().Start(ctx); err != nil {
		return err
	}
	_, err := o.controllerDaemon("vpc-0123456789abcdef0").Start(ctx)
	return err
}
