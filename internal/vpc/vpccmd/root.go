package vpccmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/spf13/cobra"
)

// Run executes the podsg-vpc command line and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		var code exitCode
		if errors.As(err, &code) { // exec: the command's own status, no message
			return int(code)
		}
		fmt.Fprintln(stderr, "podsg-vpc:", err)
		return 1
	}
	return 0
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	var verbosity int
	root := &cobra.Command{
		Use:           "podsg-vpc",
		Short:         "A local, persistent, EC2-compatible VPC for podsg",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			log := funcr.NewJSON(func(obj string) { fmt.Fprintln(stderr, obj) }, funcr.Options{Verbosity: verbosity})
			cmd.SetContext(logr.NewContext(cmd.Context(), log.WithName("podsg-vpc")))
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().IntVarP(&verbosity, "verbosity", "v", 0, "log verbosity (0 = info, 1 = debug)")
	root.AddCommand(newServe(stdout), newCleanup(), newExec(os.Stdin, stdout, stderr), newFlows(stdout), newRDSIAMAuth(stderr))
	return root
}
