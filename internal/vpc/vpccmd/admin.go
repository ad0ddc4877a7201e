package vpccmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/podsg/podsg/internal/vpc/dataplane"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/rds"
)

// The admin commands act on the kernel state of the netns data path of the server whose state
// dir they name. They need no running server: the names of kernel objects derive from it.

func newCleanup() *cobra.Command {
	var stateDir, id string
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Remove every namespace, link, route and nftables table the data path of --state-dir created",
		Long: `Remove every kernel object the netns data path of the server with this state dir
created: instance, fabric, trunk and database namespaces (and their processes), root
namespace links and routes, and the PAM service files of its databases with IAM
authentication (/etc/pam.d/podsg-<id>-rds-…). The state file itself is kept; the next serve rebuilds the
kernel state from it.

When the state dir is gone, --id names the server instead: it is the part after "podsg-" in
its namespace names (ip netns list), e.g. 6ee6fc for podsg-6ee6fc-vpc-….`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			switch {
			case (stateDir == "") == (id == ""):
				return errors.New("give exactly one of --state-dir and --id")
			case id == "":
				id = topo.IDFromStateDir(stateDir)
			}
			if err := dataplane.CleanupID(id); err != nil {
				return err
			}
			return rds.RemovePAMServices(topo.Names{ID: id}.Prefix())
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state dir of the server")
	cmd.Flags().StringVar(&id, "id", "", "the server's id, when its state dir is gone")
	return cmd
}

func newExec(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "exec INSTANCE-ID -- COMMAND [ARG...]",
		Short: "Run a command inside an instance's network namespace, like ssh to the instance",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return errors.New("usage: podsg-vpc exec INSTANCE-ID -- COMMAND [ARG...]")
			}
			c := exec.CommandContext(cmd.Context(), args[1], args[2:]...)
			c.Stdin, c.Stdout, c.Stderr = stdin, stdout, stderr
			if err := dataplane.Start(stateDir, args[0], c); err != nil {
				return err
			}
			if err := c.Wait(); err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					return exitCode(exit.ExitCode())
				}
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state dir of the server (required)")
	_ = cmd.MarkFlagRequired("state-dir")
	return cmd
}

// exitCode carries a command's exit status through cobra to Run.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newFlows(stdout io.Writer) *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "flows [VPC-ID...]",
		Short: "Show which security group rule accepted packets per ENI, and what was dropped",
		RunE: func(_ *cobra.Command, vpcIDs []string) error {
			flows, err := dataplane.Flows(stateDir, vpcIDs...)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			_, _ = fmt.Fprintln(w, "ENI\tDIRECTION\tGROUP\tRULE\tVERDICT\tPACKETS\tBYTES")
			for _, f := range flows {
				_, _ = fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", dash(f.ENI), dash(f.Direction), dash(f.GroupID), f.Rule, f.Verdict, f.Packets, f.Bytes)
			}
			return w.Flush()
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "state dir of the server (required)")
	_ = cmd.MarkFlagRequired("state-dir")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// newRDSIAMAuth is the helper PAM runs (through pam_script) for a database user granted
// rds_iam: the token in PAM_AUTHTOK, the user in PAM_USER. Exit status 0 lets the user in; anything else makes
// PostgreSQL answer "PAM authentication failed". Not for people: hidden.
func newRDSIAMAuth(stderr io.Writer) *cobra.Command {
	var socket, db string
	cmd := &cobra.Command{
		Use:    "rds-iam-auth",
		Short:  "Check an RDS IAM connect token for PAM (run by pam_script)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rds.AuthHelper(cmd.Context(), socket, db, os.Getenv); err != nil {
				fmt.Fprintln(stderr, "podsg-vpc rds-iam-auth:", err)
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "the server's IAM authentication socket")
	cmd.Flags().StringVar(&db, "db", "", "DB instance identifier")
	_ = cmd.MarkFlagRequired("socket")
	_ = cmd.MarkFlagRequired("db")
	return cmd
}
