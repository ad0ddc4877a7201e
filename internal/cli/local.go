package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/podsg/podsg/internal/localcluster"
)

// localFlags are shared by `podsg local up` and `podsg demo`.
func localFlags(cmd *cobra.Command, o *localcluster.Options) {
	self, _ := os.Executable()
	cmd.Flags().StringVar(&o.StateDir, "state-dir", localcluster.DefaultStateDir, "where the local cluster keeps its state")
	cmd.Flags().StringVar(&o.KubeBinDir, "kube-bin-dir", os.Getenv("KUBEBUILDER_ASSETS"), "Kubernetes binaries (the directory hack/kube-bin.sh prints)")
	cmd.Flags().StringVar(&o.BinDir, "bin-dir", filepath.Dir(self), "podsg's binaries (make build puts them in bin/)")
}

// recordedFlags are those of `podsg local down` and `status`, which act on a cluster that up
// started: the binaries are those up recorded unless a flag names others, whichever podsg asks.
func recordedFlags(cmd *cobra.Command, o *localcluster.Options) {
	cmd.Flags().StringVar(&o.StateDir, "state-dir", localcluster.DefaultStateDir, "where the local cluster keeps its state")
	cmd.Flags().StringVar(&o.KubeBinDir, "kube-bin-dir", "", "Kubernetes binaries (default: those up ran with)")
	cmd.Flags().StringVar(&o.BinDir, "bin-dir", "", "podsg's binaries (default: those up ran with)")
}

func newLocal() *cobra.Command {
	local := &cobra.Command{Use: "local", Short: "A Kubernetes cluster on a local VPC, on this machine"}
	var o localcluster.Options
	up := &cobra.Command{
		Use:   "up",
		Short: "Bring up the local VPC, a control plane, podsg-controller and --nodes nodes (idempotent)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := localcluster.Up(cmd.Context(), o, cmd.OutOrStdout()); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), `
The cluster is up.
  export KUBECONFIG=%s
  kubectl get nodes -o wide
  aws --endpoint-url %s ec2 describe-network-interfaces    # the same VPC, through awscli
  podsg local down                                          # remove everything
`, o.Kubeconfig(), localcluster.APIURL())
			return err
		},
	}
	localFlags(up, &o)
	up.Flags().IntVar(&o.Nodes, "nodes", 2, "number of nodes, spread over the VPC's two subnets (zones)")
	up.Flags().BoolVar(&o.HostProcesses, "host-processes", false,
		"run podsg-controller and podsg-agent as host processes (logs and pid files in the state dir, for debugging) instead of installing them in the cluster from config/ and their images, as on AWS")
	down := &cobra.Command{
		Use:   "down",
		Short: "Stop everything and remove the state: no process, namespace, link, mount or cgroup stays (else it says what is left and fails)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localcluster.Down(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	recordedFlags(down, &o)
	status := &cobra.Command{
		Use:   "status",
		Short: "Show what runs: each component's pid (found by its pid file or command line), other processes of the state dir, the nodes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return localcluster.Status(cmd.Context(), o, cmd.OutOrStdout())
		},
	}
	recordedFlags(status, &o)
	local.AddCommand(up, down, status, newLocalNode())
	return local
}

// newLocalNode is `podsg local node add|remove`: grow or shrink a running local cluster.
func newLocalNode() *cobra.Command {
	node := &cobra.Command{Use: "node", Short: "Add a node to the running local cluster, or remove one"}
	var o localcluster.Options
	add := &cobra.Command{
		Use:   "add",
		Short: "Launch one more instance (in the next subnet in turn) and run a node in it; returns once it is Ready",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := localcluster.AddNode(cmd.Context(), o, cmd.OutOrStdout())
			return err
		},
	}
	recordedFlags(add, &o)
	remove := &cobra.Command{
		Use:   "remove NODE",
		Short: "Drain NODE (a name or an instance id), stop it, terminate its instance and delete it; podsg-controller frees its trunk and branch ENIs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return localcluster.RemoveNode(cmd.Context(), o, args[0], cmd.OutOrStdout())
		},
	}
	recordedFlags(remove, &o)
	node.AddCommand(add, remove)
	return node
}
