// Command podsg-controller runs podsg's pod webhooks and its trunk, branch ENI and policy
// controllers. Everything but flag parsing lives in internal/controller.
package main

import (
	"flag"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/podsg/podsg/internal/controller"
)

func main() {
	var o controller.Options
	// --kubeconfig is registered by controller-runtime (pkg/client/config) on the default flag
	// set; defining it again would panic at start.
	flag.StringVar(&o.ClusterName, "cluster-name", "", "cluster name, tagged on every ENI podsg creates (required)")
	flag.StringVar(&o.Region, "region", "", "AWS region")
	flag.StringVar(&o.EC2Endpoint, "ec2-endpoint", "", "EC2 endpoint URL; empty for AWS")
	flag.StringVar(&o.VPCID, "vpc-id", "", "the cluster's VPC; policies naming groups of other VPCs are reported")
	flag.StringVar(&o.LocalVPCEndpoint, "local-vpc-endpoint", "",
		"the local VPC's API URL as pods reach it: pods given an IAM role also get AWS_ENDPOINT_URL_{EC2,IAM,RDS,STS} pointing there, {service} replaced by the service in lower case (never on AWS)")
	flag.StringVar(&o.IdentityNamespaceSelector, "identity-webhook-namespace-selector", "",
		"label selector of the namespaces whose pods the pod identity webhook gives IAM roles, e.g. podsg.io/pod-identity=enabled; empty for every namespace (as EKS), kube-system and --namespace always exempt")
	flag.StringVar(&o.Namespace, "namespace", "podsg-system", "namespace of the leader lease and the webhook certificate")
	flag.IntVar(&o.WebhookPort, "webhook-port", 9443, "port the webhooks are served on")
	flag.StringVar(&o.WebhookCertDir, "webhook-cert-dir", "", "directory for the webhook serving certificate; empty for a temp dir")
	flag.StringVar(&o.WebhookHost, "webhook-host", "", "register the webhooks by URL at this host (running outside the cluster)")
	flag.DurationVar(&o.BranchCooldown, "branch-cooldown", 60*time.Second, "how long a branch ENI stays unused after its pod ends")
	flag.BoolVar(&o.BranchReuse, "branch-reuse", true,
		"after its cool-down, park a pod's branch ENI on its trunk for the next pod of the node (its groups changed in one call if they differ); false deletes it, as AWS's controller does")
	flag.DurationVar(&o.IdleBranchTTL, "idle-branch-ttl", 10*time.Minute, "how long a parked or warm branch ENI beyond its warm target is kept before it is deleted")
	flag.IntVar(&o.WarmBranchesPerNode, "warm-branches-per-node", 0,
		"branch ENIs kept idle on every trunk node for each SecurityGroupPolicy's groups, unless the policy sets spec.warmBranchesPerNode; made from the EC2 budget pods leave (needs --branch-reuse)")
	flag.DurationVar(&o.SweepInterval, "sweep-interval", 5*time.Minute, "interval of the orphan ENI sweeper")
	flag.IntVar(&o.NodeWorkers, "node-workers", 8,
		"nodes the trunk controller sets up or adopts at once; after a restart it adopts every trunk node again")
	flag.IntVar(&o.PodWorkers, "pod-workers", 8,
		"pods the branch controller serves at once, so that a pod whose branch is idle does not wait behind one whose EC2 calls wait for the budget")
	flag.StringVar(&o.InstanceLimitsFile, "instance-limits-file", "", "overrides of the instance type → branch ENI limit table")
	flag.StringVar(&o.ControllerUsername, "controller-username", "",
		"user allowed to write the pod annotations: the one this controller's credentials authenticate as; empty to learn it at start")
	d := controller.DefaultEC2Budget
	flag.Float64Var(&o.EC2Budget.MutatingRate, "ec2-mutating-rate", d.MutatingRate,
		"the account's EC2 budget of mutating requests per second (EC2's default token bucket refill)")
	flag.IntVar(&o.EC2Budget.MutatingBurst, "ec2-mutating-burst", d.MutatingBurst, "the account's EC2 burst of mutating requests (bucket size)")
	flag.Float64Var(&o.EC2Budget.DescribeRate, "ec2-describe-rate", d.DescribeRate, "the account's EC2 budget of describe requests per second")
	flag.IntVar(&o.EC2Budget.DescribeBurst, "ec2-describe-burst", d.DescribeBurst, "the account's EC2 burst of describe requests")
	flag.Float64Var(&o.EC2Budget.LeaveShare, "ec2-budget-leave", d.LeaveShare,
		"share of the account's EC2 budget podsg-controller leaves to its other users, in [0, 1); pods are served first, then warm pools, then cleanup")
	flag.StringVar(&o.MetricsAddr, "metrics-addr", ":8080", "metrics address; 0 disables")
	flag.StringVar(&o.HealthAddr, "health-addr", ":8081", "/healthz and /readyz address")
	flag.StringVar(&o.PprofAddr, "pprof-addr", "", "address serving /debug/pprof (profiles of the running controller); empty disables")
	flag.BoolVar(&o.PprofContention, "pprof-contention", false,
		"with --pprof-addr, sample blocked goroutines and contended mutexes for /debug/pprof/block and /debug/pprof/mutex (a small cost on every blocking event)")
	flag.StringVar(&o.MemoryLimit, "memory-limit", controller.MemoryLimitAuto,
		"the Go runtime's soft memory limit: auto (90% of the container's cgroup memory limit; none without one, or with GOMEMLIMIT set), none, or a size such as 900Mi. Without one the heap may grow to twice its live data while a restart's first list is handled")
	flag.BoolVar(&o.LeaderElect, "leader-elect", false, "elect a leader among replicas; webhooks are served by all")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if f := flag.Lookup("kubeconfig"); f != nil {
		o.Kubeconfig = f.Value.String()
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	ctx := ctrl.SetupSignalHandler()
	if err := controller.Run(ctx, o); err != nil {
		ctrl.Log.Error(err, "podsg-controller failed")
		os.Exit(1)
	}
}
