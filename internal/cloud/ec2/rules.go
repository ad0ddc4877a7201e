package ec2

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/cloud"
)

// What `podsg reach` reads besides ENIs by id: the rules of security groups, and the ENI
// behind a private address (a regular pod's IP is a secondary address of a node's ENI).

// DescribeSecurityGroupRules returns every rule of the given groups, reading all pages.
func (c *Client) DescribeSecurityGroupRules(ctx context.Context, groupIDs []string) ([]cloud.SecurityGroupRule, error) {
	if len(groupIDs) == 0 {
		return nil, nil // without a filter EC2 would list every rule of the account
	}
	p := ec2.NewDescribeSecurityGroupRulesPaginator(c.api, &ec2.DescribeSecurityGroupRulesInput{
		Filters:    []types.Filter{{Name: aws.String("group-id"), Values: groupIDs}},
		MaxResults: aws.Int32(c.pageSize),
	})
	return allPages(ctx, c, "DescribeSecurityGroupRules", p, func(page *ec2.DescribeSecurityGroupRulesOutput) []cloud.SecurityGroupRule {
		out := make([]cloud.SecurityGroupRule, 0, len(page.SecurityGroupRules))
		for _, r := range page.SecurityGroupRules {
			out = append(out, fromRule(r))
		}
		return out
	})
}

func fromRule(r types.SecurityGroupRule) cloud.SecurityGroupRule {
	out := cloud.SecurityGroupRule{
		ID: aws.ToString(r.SecurityGroupRuleId), GroupID: aws.ToString(r.GroupId), Egress: aws.ToBool(r.IsEgress),
		Protocol: aws.ToString(r.IpProtocol), FromPort: -1, ToPort: -1,
		CIDR: aws.ToString(r.CidrIpv4), CIDRv6: aws.ToString(r.CidrIpv6), PrefixListID: aws.ToString(r.PrefixListId),
		Description: aws.ToString(r.Description),
	}
	if r.FromPort != nil {
		out.FromPort = *r.FromPort
	}
	if r.ToPort != nil {
		out.ToPort = *r.ToPort
	}
	if g := r.ReferencedGroupInfo; g != nil {
		out.ReferencedGroupID = aws.ToString(g.GroupId)
	}
	return out
}

// NetworkInterfacesByAddress returns the ENIs that hold ip as their primary or a secondary
// private address: one per VPC at most, as VPCs may overlap.
func (c *Client) NetworkInterfacesByAddress(ctx context.Context, ip string) ([]cloud.NetworkInterface, error) {
	return c.describeENIsFiltered(ctx, types.Filter{Name: aws.String("addresses.private-ip-address"), Values: []string{ip}})
}

func (c *Client) describeENIsFiltered(ctx context.Context, f types.Filter) ([]cloud.NetworkInterface, error) {
	p := ec2.NewDescribeNetworkInterfacesPaginator(c.api, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{f}, MaxResults: aws.Int32(c.pageSize)})
	return allPages(ctx, c, "DescribeNetworkInterfaces", p, enisOf)
}
