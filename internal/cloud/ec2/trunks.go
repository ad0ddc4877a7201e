package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/cloud"
)

// AssociateTrunkInterface associates a branch ENI to a trunk ENI under a VLAN id.
func (c *Client) AssociateTrunkInterface(ctx context.Context, trunkID, branchID string, vlan int, clientToken string) (cloud.TrunkAssociation, error) {
	req := &ec2.AssociateTrunkInterfaceInput{
		TrunkInterfaceId: aws.String(trunkID), BranchInterfaceId: aws.String(branchID),
		VlanId: aws.Int32(int32(vlan)), //nolint:gosec // VLAN ids are 1..4094
	}
	if clientToken != "" {
		req.ClientToken = aws.String(clientToken)
	}
	out, err := call(ctx, c, "AssociateTrunkInterface", true, func(ctx context.Context) (*ec2.AssociateTrunkInterfaceOutput, error) {
		return c.api.AssociateTrunkInterface(ctx, req)
	})
	if err != nil {
		return cloud.TrunkAssociation{}, err
	}
	return fromAssociation(out.InterfaceAssociation), nil
}

// DisassociateTrunkInterface removes a trunk association.
func (c *Client) DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error {
	req := &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String(associationID)}
	if clientToken != "" {
		req.ClientToken = aws.String(clientToken)
	}
	_, err := call(ctx, c, "DisassociateTrunkInterface", true, func(ctx context.Context) (*ec2.DisassociateTrunkInterfaceOutput, error) {
		return c.api.DisassociateTrunkInterface(ctx, req)
	})
	return err
}

// DescribeTrunkInterfaceAssociations returns every association of the trunks, reading all
// pages: one filter of up to filterValues trunk ids per request, so a restart that adopts a
// thousand trunks reads their associations in a few paged requests, not one each (inChunks: a few at once).
func (c *Client) DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error) {
	return inChunks(ctx, trunkIDs, func(ctx context.Context, chunk []string) ([]cloud.TrunkAssociation, error) {
		req := &ec2.DescribeTrunkInterfaceAssociationsInput{
			Filters:    []types.Filter{{Name: aws.String("trunk-interface-association.trunk-interface-id"), Values: chunk}},
			MaxResults: aws.Int32(min(c.pageSize, 255)),
		}
		p := ec2.NewDescribeTrunkInterfaceAssociationsPaginator(c.api, req)
		return allPages(ctx, c, "DescribeTrunkInterfaceAssociations", p, func(page *ec2.DescribeTrunkInterfaceAssociationsOutput) []cloud.TrunkAssociation {
			out := make([]cloud.TrunkAssociation, 0, len(page.InterfaceAssociations))
			for i := range page.InterfaceAssociations {
				out = append(out, fromAssociation(&page.InterfaceAssociations[i]))
			}
			return out
		})
	})
}

func fromAssociation(a *types.TrunkInterfaceAssociation) cloud.TrunkAssociation {
	if a == nil {
		return cloud.TrunkAssociation{}
	}
	return cloud.TrunkAssociation{
		ID: aws.ToString(a.AssociationId), TrunkID: aws.ToString(a.TrunkInterfaceId),
		BranchID: aws.ToString(a.BranchInterfaceId), VLAN: int(aws.ToInt32(a.VlanId)),
	}
}
