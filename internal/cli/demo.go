package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/podsg/podsg/internal/localcluster"
)

func newDemo() *cobra.Command {
	var o localcluster.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the seed tutorial on the local cluster: two pods on one node, only one reaches the database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			results, err := localcluster.Demo(cmd.Context(), o, out)
			if err != nil {
				return err
			}
			for _, r := range results {
				_, _ = fmt.Fprintf(out, "\n$ kubectl logs %s      # on node %s\n%s\n", r.Pod, r.Node, r.Log)
			}
			_, _ = fmt.Fprintln(out)
			w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			_, _ = fmt.Fprintln(w, "POD\tNODE\tNETWORK INTERFACE\tSECURITY GROUPS\tDATABASE")
			for _, r := range results {
				eni, groups := "node's primary ENI", "node's groups"
				if r.BranchENI != "" {
					eni, groups = "branch "+r.BranchENI, r.Groups
				}
				verdict := "no connection"
				if strings.HasPrefix(r.Log, "('PostgreSQL") {
					verdict = "connected"
				}
				_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Pod, r.Node, eni, groups, verdict)
			}
			_ = w.Flush()
			_, err = fmt.Fprintf(out, `
The cluster stays up. Look around:
  export KUBECONFIG=%s
  kubectl get sgp,pods -o wide
  kubectl get pod postgres-test -o jsonpath='{.metadata.annotations.vpc\.amazonaws\.com/pod-eni}'
  aws --endpoint-url %s ec2 describe-network-interfaces --filters Name=interface-type,Values=branch
Tear down: podsg local down
`, o.Kubeconfig(), localcluster.APIURL())
			return err
		},
	}
	localFlags(cmd, &o)
	cmd.AddCommand(newDemoMetabase())
	return cmd
}

func newDemoMetabase() *cobra.Command {
	var o localcluster.Options
	cmd := &cobra.Command{
		Use:   "metabase",
		Short: "Run seed 002's walk-through: the security group and IAM role layers, each failing on its own",
		Long: `Runs the metabase walk-through (seed 002) on the local cluster, after the seed tutorial's
setup: namespace metabase, a ServiceAccount with an IAM role that may rds-db:connect as the
database user metabase, a SecurityGroupPolicy selecting it and a Deployment logging in with an
IAM token. Then, recreating the Deployment each time as the walk-through does: the policy
deleted (connect timeout), the policy back and the role annotation removed (PAM authentication
failed: the pod signs with its node's instance role). It puts both back at the end.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			outcomes, err := localcluster.DemoMetabase(cmd.Context(), o, out)
			if len(outcomes) > 0 {
				_, _ = fmt.Fprintln(out)
				w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				_, _ = fmt.Fprintln(w, "LAYERS IN PLACE\tPOD\tNETWORK INTERFACE\tPOD PRINTED")
				for _, r := range outcomes {
					eni := "node's primary ENI"
					if r.BranchENI != "" {
						eni = "branch " + r.BranchENI
					}
					_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.Case, r.Pod, eni, r.Log)
				}
				_ = w.Flush()
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(out, "\nRestored: policy and role annotation back, a new pod connects.\n  export KUBECONFIG=%s; kubectl -n metabase get sa,sgp,deploy,pods -o wide\n", o.Kubeconfig())
			return err
		},
	}
	localFlags(cmd, &o)
	return cmd
}
