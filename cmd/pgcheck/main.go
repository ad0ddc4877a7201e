// pgcheck is the seed tutorial's test app (postgres_test_iam.py): it prints the PostgreSQL
// server version, or why it could not connect, and exits 0 either way like the original.
// --auth=iam logs in as postgres_test_iam.py does, with an RDS IAM auth token made from the
// SDK's default credentials; --auth=password (the default) with PASSWORD. --wait keeps it
// running afterwards, as metabase in seed 002's Deployment.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/podsg/podsg/internal/pgcheck"
)

func main() {
	authFlag := flag.String("auth", string(pgcheck.AuthPassword), "how to log in: password (PASSWORD) or iam (an RDS IAM auth token)")
	waitFlag := flag.Bool("wait", false, "after printing, keep running until SIGTERM, as a server would (a Deployment's pod then prints once)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := pgcheck.FromEnv(os.Getenv)
	if err == nil {
		cfg.Auth, err = pgcheck.ParseAuth(*authFlag)
	}
	if err == nil {
		err = pgcheck.Run(ctx, cfg, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgcheck:", err)
		os.Exit(1)
	}
	if *waitFlag {
		<-ctx.Done()
	}
}
