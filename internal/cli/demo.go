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
	return cmd
}
