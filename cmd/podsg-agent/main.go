// Command podsg-agent is the node agent: one per node (a DaemonSet on AWS, a process in each
// instance namespace of the local cluster). It serves the podsg-cni plugin.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"

	"github.com/podsg/podsg/internal/agent"
	"github.com/podsg/podsg/internal/cni"
	"github.com/podsg/podsg/internal/podstate"
)

func main() {
	o := agent.Options{CNI: cni.NetConf{}}
	o.CNI.CNIVersion, o.CNI.Name = "1.0.0", "podsg"
	flag.StringVar(&o.Kubeconfig, "kubeconfig", "", "kubeconfig file; empty means in-cluster")
	flag.StringVar(&o.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (default $NODE_NAME)")
	flag.StringVar(&o.EC2Endpoint, "ec2-endpoint", "", "EC2 endpoint URL; empty means AWS (the local VPC's URL otherwise)")
	flag.StringVar(&o.IMDSEndpoint, "imds-endpoint", "", "instance metadata endpoint; empty means http://169.254.169.254")
	flag.BoolVar(&o.EnablePodENI, "enable-pod-eni", false, "ask for a trunk ENI and serve branch-ENI pods")
	flag.StringVar(&o.Alloc.Mode, "pod-sg-enforcing-mode", podstate.ModeStrict, "branch pods: strict (all traffic through the branch ENI) or standard (only off-node traffic)")
	flag.StringVar(&o.Alloc.VethPrefix, "veth-prefix", "eni", "host veth name prefix (at most 4 characters)")
	flag.IntVar(&o.Alloc.RouteTableBase, "route-table-base", 100, "a branch pod's route table is this plus its VLAN id")
	flag.DurationVar(&o.Alloc.AnnotationWait, "annotation-wait", 5*time.Second, "how long a branch pod's ADD waits for podsg-controller's annotation")
	// The warm pool takes AWS's VPC CNI settings also from its environment variables, as set on
	// aws-node's DaemonSet; a flag wins over its variable.
	targets, err := agent.TargetsFromEnv(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "podsg-agent:", err)
		os.Exit(2)
	}
	flag.IntVar(&o.Targets.WarmIPs, "warm-ip-target", targets.WarmIPs, "free secondary IPs to keep for regular pods; above 0 (or with --minimum-ip-target) the IP targets replace the ENI target ($"+agent.EnvWarmIPTarget+" sets the default)")
	flag.IntVar(&o.Targets.MinimumIPs, "minimum-ip-target", targets.MinimumIPs, "least secondary IPs to keep assigned, free or used ($"+agent.EnvMinimumIPTarget+" sets the default)")
	flag.IntVar(&o.Targets.WarmENIs, "warm-eni-target", targets.WarmENIs, "without IP targets: ENIs' worth of free secondary IPs to keep ($"+agent.EnvWarmENITarget+" sets the default)")
	flag.DurationVar(&o.IPCooldown, "ip-cooldown", 30*time.Second, "how long a released pod IP rests before another pod gets it")
	flag.StringVar(&o.StateDir, "state-dir", cni.DefaultStateDir, "per-container network records, shared with the CNI plugin")
	flag.StringVar(&o.Socket, "socket", cni.DefaultAgentSocket, "unix socket the CNI plugin talks to")
	flag.StringVar(&o.HealthAddr, "health-addr", "127.0.0.1:8482", "serves /healthz, /readyz and /metrics; empty disables")
	flag.BoolVar(&o.NetworkPolicy, "network-policy", false, "enforce NetworkPolicy and ClusterNetworkPolicy on the node's pods (one nftables table, inet podsg_netpol; needs the nft command and list/watch of pods, namespaces, nodes and the policies)")
	flag.BoolVar(&o.LogDenied, "log-denied-packets", false, "log each packet network policy drops (kernel log, prefix \"podsg-netpol deny <policy>\")")
	flag.StringVar(&o.CNIBinSource, "cni-bin-source", "", "podsg-cni binary to install; empty installs none")
	flag.StringVar(&o.CNIBinDir, "cni-bin-dir", "/opt/cni/bin", "where container runtimes look for CNI plugins")
	flag.StringVar(&o.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "where container runtimes look for CNI configuration")
	flag.IntVar(&o.CNI.MTU, "mtu", 9001, "pod MTU")
	flag.StringVar(&o.CNI.SubInterfaceDriver, "subif-driver", "vlan", "branch sub-interfaces: vlan (AWS) or vxlan (local VPC)")
	flag.IntVar(&o.CNI.VXLANPort, "vxlan-port", 4789, "UDP port of vxlan sub-interfaces")
	verbosity := flag.Int("v", 0, "log verbosity")
	flag.Parse()
	o.CNI.AgentSocket, o.CNI.StateDir, o.CNI.VethPrefix = o.Socket, o.StateDir, o.Alloc.VethPrefix

	log := funcr.NewJSON(func(obj string) { fmt.Fprintln(os.Stderr, obj) }, funcr.Options{Verbosity: *verbosity}).WithName("podsg-agent")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = agent.Run(logr.NewContext(ctx, log), o)
	stop()
	if err != nil {
		log.Error(err, "exiting")
		os.Exit(1)
	}
}
