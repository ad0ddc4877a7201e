package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/internal/cloud"
)

// cleanupEC2 is what `podsg cleanup` needs of EC2.
type cleanupEC2 interface {
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error)
	DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error
	DetachNetworkInterface(ctx context.Context, attachmentID string, force bool) error
	DeleteNetworkInterface(ctx context.Context, id string) error
}

func newCleanup() *cobra.Command {
	var cluster, region, endpoint string
	cmd := &cobra.Command{
		Use:   "cleanup",
		Short: "Delete every ENI podsg created for a cluster (trunks and branches), e.g. after deleting the cluster",
		Long: `Delete every network interface tagged podsg.io/cluster=<name>: branch associations are
removed, branch ENIs deleted, trunk ENIs detached and deleted. Safe to run twice. Run it only
when podsg-controller no longer runs for that cluster, or it will allocate again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster == "" {
				return errors.New("--cluster-name is required")
			}
			c, err := ec2Client(cmd.Context(), region, endpoint)
			if err != nil {
				return err
			}
			return cleanupCluster(cmd.Context(), c, cluster, cmd.OutOrStdout(), 2*time.Minute)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster-name", "", "the cluster whose ENIs to delete (podsg-controller's --cluster-name)")
	cmd.Flags().StringVar(&region, "region", "us-west-2", "AWS region")
	cmd.Flags().StringVar(&endpoint, "ec2-endpoint", "", "EC2 endpoint URL; empty for AWS (the local VPC's URL otherwise)")
	return cmd
}

// cleanupCluster deletes the cluster's ENIs in dependency order, branches before trunks, each
// as the controllers free them (cloud.FreeENI); detachTimeout bounds the wait for an ENI to
// come free after its detach (immediate locally, tens of seconds on AWS).
func cleanupCluster(ctx context.Context, c cleanupEC2, cluster string, out io.Writer, detachTimeout time.Duration) error {
	enis, err := c.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagCluster: cluster}})
	if err != nil {
		return fmt.Errorf("listing the cluster's ENIs: %w", err)
	}
	var trunks, others []cloud.NetworkInterface
	ours := map[string]bool{}
	for _, e := range enis {
		ours[e.ID] = true
		if e.Type == cloud.InterfaceTypeTrunk {
			trunks = append(trunks, e)
		} else {
			others = append(others, e)
		}
	}
	var errs []error
	free := patientEC2{cleanupEC2: c, timeout: detachTimeout}
	association := map[string]string{} // branch ENI id -> its association with one of the trunks
	for _, t := range trunks {
		assocs, err := c.DescribeTrunkInterfaceAssociations(ctx, t.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the branches of trunk %s: %w", t.ID, err))
			continue
		}
		for _, a := range assocs {
			association[a.BranchID] = a.ID
			if !ours[a.BranchID] { // not the cluster's ENI: only let go of the trunk, which is going
				errs = append(errs, cloud.FreeENI(ctx, free, cloud.ENIRef{AssociationID: a.ID}))
			}
		}
	}
	for _, e := range append(others, trunks...) {
		err := cloud.FreeENI(ctx, free, cloud.ENIRef{ID: e.ID, AssociationID: association[e.ID], AttachmentID: e.AttachmentID})
		if err == nil {
			_, _ = fmt.Fprintf(out, "deleted %s %s\n", e.Type, e.ID)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// patientEC2 deletes an ENI patiently: EC2 reports an ENI in use for a while after its
// detach, so the delete is retried while it conflicts, up to timeout.
type patientEC2 struct {
	cleanupEC2
	timeout time.Duration
}

func (p patientEC2) DeleteNetworkInterface(ctx context.Context, id string) error {
	var last error
	err := wait.PollUntilContextTimeout(ctx, time.Second, p.timeout, true, func(ctx context.Context) (bool, error) {
		last = p.cleanupEC2.DeleteNetworkInterface(ctx, id)
		return !errors.Is(last, cloud.ErrConflict), nil
	})
	switch {
	case errors.Is(last, cloud.ErrConflict):
		return fmt.Errorf("still in use after %s: %w", p.timeout, last)
	case last != nil:
		return last
	}
	return err
}
