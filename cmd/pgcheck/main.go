// pgcheck is the seed tutorial's test app (postgres_test_iam.py): it prints the PostgreSQL
// server version, or why it could not connect, and exits 0 either way like the original.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/podsg/podsg/internal/pgcheck"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := pgcheck.FromEnv(os.Getenv)
	if err == nil {
		err = pgcheck.Run(ctx, cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgcheck:", err)
		os.Exit(1)
	}
}
