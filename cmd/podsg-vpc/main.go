// Command podsg-vpc is the local VPC: an EC2-compatible Query API server
// with persistent state. See internal/vpc/vpccmd.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/podsg/podsg/internal/vpc/vpccmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := vpccmd.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
