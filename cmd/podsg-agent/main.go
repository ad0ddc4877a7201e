// Command podsg-agent is the node agent: one per node (a DaemonSet on AWS, a process in each
// instance namespace of the local cluster).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/podsg/podsg/internal/agent"
)

func main() {
	var o agent.Options
	flag.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster")
	flag.StringVar(&o.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name")
	flag.BoolVar(&o.EnablePodENI, "enable-pod-eni", false, "ask for a trunk ENI and serve branch-ENI pods")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := agent.Run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "podsg-agent:", err)
		os.Exit(1)
	}
}
