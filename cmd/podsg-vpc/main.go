// Command podsg-vpc is the local VPC: an EC2-compatible Query API server
// with persistent state. See internal/vpc/cli.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/podsg/podsg/internal/vpc/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
