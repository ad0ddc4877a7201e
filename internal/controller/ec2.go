package controller

import (
	"context"

	"github.com/podsg/podsg/internal/cloud"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
)

// EC2 is every call podsg-controller makes; the controllers each declare their own subset.
// *ec2.Client (internal/cloud/ec2) implements it with client-side rate limits and metrics;
// tests pass internal/cloud/fake.
type EC2 interface {
	DescribeInstance(ctx context.Context, id string) (cloud.Instance, error)
	DescribeInstances(ctx context.Context, ids []string) ([]cloud.Instance, error)
	DescribeSubnet(ctx context.Context, id string) (cloud.Subnet, error)
	DescribeSecurityGroups(ctx context.Context, ids []string) ([]cloud.SecurityGroup, error)
	CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error)
	DeleteNetworkInterface(ctx context.Context, id string) error
	AttachNetworkInterface(ctx context.Context, eniID, instanceID string, deviceIndex int) (string, error)
	DetachNetworkInterface(ctx context.Context, attachmentID string, force bool) error
	DescribeNetworkInterfaces(ctx context.Context, f cloud.NetworkInterfaceFilter) ([]cloud.NetworkInterface, error)
	AssociateTrunkInterface(ctx context.Context, trunkID, branchID string, vlan int, clientToken string) (cloud.TrunkAssociation, error)
	DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error
	DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error)
	CreateTags(ctx context.Context, ids []string, tags map[string]string) error
	ModifyNetworkInterfaceGroups(ctx context.Context, eniID string, groups []string) error
}

var _ EC2 = (*cloudec2.Client)(nil)
