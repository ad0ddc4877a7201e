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
	up.Flags().IntVar(&o.Nodes, "nodes", 1, "number of nodes")
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
	local.AddCommand(up, down, status)
	return local
}
