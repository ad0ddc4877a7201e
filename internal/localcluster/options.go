package localcluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Fixed names and addresses of the local cluster, EKS-like.
const (
	ClusterName  = "podsg-local"
	Region       = "us-west-2"
	InstanceType = "m5.xlarge" // the seed tutorial's node type
	VPCCIDR      = "10.0.0.0/16"
	// APIPort is the local VPC's API on loopback (root namespace).
	APIPort = 8450
	// VPCEndpoint is the same API as instances see it (the data path serves it in every
	// instance, like an EC2 interface VPC endpoint).
	VPCEndpoint = "http://169.254.169.254:8450"
	// PodVPCEndpoint is the same API as pods see it, one hostname per service: the VPC's
	// interface endpoint, which the VPC resolver names sts.REGION.amazonaws.com and the like,
	// reached through the fabric from any pod, on a branch ENI too (169.254.169.254 is the
	// node's, out of such a pod's reach). {service} is podidentity.ServicePlaceholder.
	PodVPCEndpoint = "http://{service}." + Region + ".amazonaws.com"
	webhookPort    = 9443
	tagClusterKV   = "podsg.io/cluster"
)

// Subnets of the VPC: two private subnets in two zones, like eksctl's privateNetworking.
var Subnets = []struct{ CIDR, AZ string }{{"10.0.0.0/19", Region + "a"}, {"10.0.32.0/19", Region + "b"}}

// maxNodes is how many nodes one machine holds.
const maxNodes = 8

// Options configure the local cluster.
type Options struct {
	// StateDir holds everything: VPC state, PKI, logs, node state. Its parents must be
	// searchable by user postgres (the local RDS), so the default is under /var/lib.
	StateDir string
	// Nodes is the number of instances (nodes).
	Nodes int
	// KubeBinDir holds the Kubernetes binaries (hack/kube-bin.sh).
	KubeBinDir string
	// BinDir holds podsg's binaries: podsg-vpc, podsg-controller, podsg-agent, podsg-cni, pgcheck.
	// Down and Status take both directories from what Up recorded when they are empty.
	BinDir string
	// HostProcesses runs podsg-controller and podsg-agent as processes on the host (in each
	// instance's network namespace for the agents) instead of installing them in the cluster
	// from config/ and their images: for debugging them with the host's tools. Down, Status
	// and the node commands take it from what Up recorded.
	HostProcesses bool
	// sockets is where up's preflight looks up who holds its ports, nil the host's /proc;
	// binds are the addresses it checks, nil rootBindings(). Tests set them.
	sockets socketTable
	binds   []binding
}

// DefaultStateDir is where `podsg local` keeps its state unless told otherwise.
const DefaultStateDir = "/var/lib/podsg/local"

// absStateDir fills in the default state dir and makes it absolute: daemons are recognised by
// the paths on their command lines, which must not depend on where podsg runs.
func (o *Options) absStateDir() error {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	abs, err := filepath.Abs(o.StateDir)
	if err != nil {
		return fmt.Errorf("--state-dir %q: %w", o.StateDir, err)
	}
	o.StateDir = abs
	return nil
}

func (o *Options) validate() error {
	var errs []error
	if err := o.absStateDir(); err != nil {
		return err
	}
	if o.Nodes < 1 || o.Nodes > maxNodes {
		errs = append(errs, fmt.Errorf("--nodes %d: 1 to %d nodes fit on one machine", o.Nodes, maxNodes))
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubelet", "kubectl", "kube-proxy", "coredns"} {
		if _, err := os.Stat(filepath.Join(o.KubeBinDir, b)); err != nil {
			errs = append(errs, fmt.Errorf("--kube-bin-dir %q lacks %s: run hack/kube-bin.sh and pass the directory it prints", o.KubeBinDir, b))
			break
		}
	}
	for _, b := range []string{"podsg-vpc", "podsg-controller", "podsg-agent", "podsg-cni", "pgcheck"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			errs = append(errs, fmt.Errorf("--bin-dir %q lacks %s: run make build", o.BinDir, b))
			break
		}
	}
	return errors.Join(errs...)
}

func (o *Options) path(elem ...string) string {
	return filepath.Join(append([]string{o.StateDir}, elem...)...)
}

// Kubeconfig is the admin kubeconfig `up` writes for the user.
func (o *Options) Kubeconfig() string { return o.path("kubeconfig") }

// APIURL is the local VPC's endpoint for the user's awscli and SDKs.
func APIURL() string { return fmt.Sprintf("http://127.0.0.1:%d", APIPort) }
