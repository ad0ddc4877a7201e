package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/internal/version"
)

// Run executes the podsg command line with args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The commands' Kubernetes clients are controller-runtime's, which log through a global
	// logger; unset, its first use prints a stack trace to stderr ("log.SetLogger(...) was
	// never called"). Nothing they log is for a user of the command line: failures come back
	// as errors, which are printed below.
	ctrllog.SetLogger(logr.Discard())
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		_, _ = fmt.Fprintln(stderr, "podsg:", err)
		// A command may ask for its own status: `reach` exits 2 for a flow the groups deny,
		// so that scripts tell "denied" from "could not tell".
		var coded interface{ ExitCode() int }
		if errors.As(err, &coded) {
			return coded.ExitCode()
		}
		return 1
	}
	return 0
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "podsg",
		Short:         "Security groups for Kubernetes pods, on AWS or on a local VPC",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version of podsg",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), "podsg", version.Version)
			return err
		},
	})
	root.AddCommand(newLocal(), newDemo(), newExplain(), newCleanup(), newImages(), newReach())
	return root
}
