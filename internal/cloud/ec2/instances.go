package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/cloud"
)

// DescribeInstance returns one instance with its network interfaces, primary first.
func (c *Client) DescribeInstance(ctx context.Context, id string) (cloud.Instance, error) {
	out, err := call(ctx, c, "DescribeInstances", false, func(ctx context.Context) (*ec2.DescribeInstancesOutput, error) {
		return c.api.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	})
	if err != nil {
		return cloud.Instance{}, err
	}
	var found []types.Instance
	for _, r := range out.Reservations {
		found = append(found, r.Instances...)
	}
	inst, err := one("DescribeInstances", id, found)
	if err != nil {
		return cloud.Instance{}, err
	}
	return fromInstance(inst), nil
}

// filterValues is how many values one describe filter carries: EC2 accepts up to 200.
const filterValues = 200

// DescribeInstances returns the instances of ids that exist (a missing one is left out, not
// an error), reading them filterValues at a time with MaxResults pagination: a restart that
// adopts a thousand nodes reads their instances in a few requests, not one each (inChunks: a few at once).
func (c *Client) DescribeInstances(ctx context.Context, ids []string) ([]cloud.Instance, error) {
	return inChunks(ctx, ids, func(ctx context.Context, chunk []string) ([]cloud.Instance, error) {
		p := ec2.NewDescribeInstancesPaginator(c.api, &ec2.DescribeInstancesInput{
			Filters: []types.Filter{{Name: aws.String("instance-id"), Values: chunk}}, MaxResults: aws.Int32(c.pageSize)})
		return allPages(ctx, c, "DescribeInstances", p, func(page *ec2.DescribeInstancesOutput) []cloud.Instance {
			var insts []cloud.Instance
			for _, r := range page.Reservations {
				for _, i := range r.Instances {
					insts = append(insts, fromInstance(i))
				}
			}
			return insts
		})
	})
}

func fromInstance(i types.Instance) cloud.Instance {
	inst := cloud.Instance{
		ID: aws.ToString(i.InstanceId), Type: string(i.InstanceType), VPCID: aws.ToString(i.VpcId),
		SubnetID: aws.ToString(i.SubnetId), PrivateIP: aws.ToString(i.PrivateIpAddress),
	}
	if i.Placement != nil {
		inst.AvailabilityZone = aws.ToString(i.Placement.AvailabilityZone)
	}
	for _, n := range i.NetworkInterfaces {
		eni := cloud.NetworkInterface{
			ID: aws.ToString(n.NetworkInterfaceId), Type: aws.ToString(n.InterfaceType), Status: string(n.Status),
			SubnetID: aws.ToString(n.SubnetId), VPCID: aws.ToString(n.VpcId), MAC: aws.ToString(n.MacAddress),
			PrivateIP: aws.ToString(n.PrivateIpAddress), Description: aws.ToString(n.Description),
		}
		for _, g := range n.Groups {
			eni.SecurityGroups = append(eni.SecurityGroups, aws.ToString(g.GroupId))
		}
		if a := n.Attachment; a != nil {
			eni.AttachmentID, eni.InstanceID, eni.DeviceIndex = aws.ToString(a.AttachmentId), inst.ID, int(aws.ToInt32(a.DeviceIndex))
		}
		if eni.DeviceIndex == 0 && eni.AttachmentID != "" {
			inst.SecurityGroups = eni.SecurityGroups
			inst.NetworkInterfaces = append([]cloud.NetworkInterface{eni}, inst.NetworkInterfaces...)
			continue
		}
		inst.NetworkInterfaces = append(inst.NetworkInterfaces, eni)
	}
	return inst
}

// DescribeSubnet returns one subnet.
func (c *Client) DescribeSubnet(ctx context.Context, id string) (cloud.Subnet, error) {
	out, err := call(ctx, c, "DescribeSubnets", false, func(ctx context.Context) (*ec2.DescribeSubnetsOutput, error) {
		return c.api.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{id}})
	})
	if err != nil {
		return cloud.Subnet{}, err
	}
	s, err := one("DescribeSubnets", id, out.Subnets)
	if err != nil {
		return cloud.Subnet{}, err
	}
	return cloud.Subnet{ID: aws.ToString(s.SubnetId), VPCID: aws.ToString(s.VpcId), CIDR: aws.ToString(s.CidrBlock), AvailabilityZone: aws.ToString(s.AvailabilityZone)}, nil
}

// DescribeSecurityGroups returns the named groups. If any is missing, EC2 answers
// InvalidGroup.NotFound naming it, which this returns as a cloud.ErrNotFound.
func (c *Client) DescribeSecurityGroups(ctx context.Context, ids []string) ([]cloud.SecurityGroup, error) {
	p := ec2.NewDescribeSecurityGroupsPaginator(c.api, &ec2.DescribeSecurityGroupsInput{GroupIds: ids})
	return allPages(ctx, c, "DescribeSecurityGroups", p, func(page *ec2.DescribeSecurityGroupsOutput) []cloud.SecurityGroup {
		out := make([]cloud.SecurityGroup, 0, len(page.SecurityGroups))
		for _, g := range page.SecurityGroups {
			out = append(out, cloud.SecurityGroup{ID: aws.ToString(g.GroupId), Name: aws.ToString(g.GroupName), VPCID: aws.ToString(g.VpcId)})
		}
		return out
	})
}
