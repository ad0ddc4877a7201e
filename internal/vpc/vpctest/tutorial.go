package vpctest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tutorial is the network of AWS's launch tutorial for security groups for pods: a VPC with
// one subnet, a group for the nodes, the database clients' group (RDSDbAccessSG) and the
// database's group (RDSDbSG), which admits PostgreSQL (tcp 5432) from the clients' group only.
type Tutorial struct {
	VPC, Subnet            string
	NodeSG, ClientSG, DBSG string
	// DBRule is the id of RDSDbSG's rule admitting RDSDbAccessSG on 5432.
	DBRule string
}

// NewTutorial creates the tutorial's network through c in vpcCIDR, with subnetCIDR.
func NewTutorial(t testing.TB, c *ec2.Client, vpcCIDR, subnetCIDR string) Tutorial {
	t.Helper()
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(vpcCIDR)})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	tu := Tutorial{VPC: *vpc.Vpc.VpcId}
	sub, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(tu.VPC), CidrBlock: aws.String(subnetCIDR)})
	if err != nil {
		t.Fatalf("CreateSubnet: %v", err)
	}
	tu.Subnet = *sub.Subnet.SubnetId
	group := func(name string) string {
		out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{
			VpcId: aws.String(tu.VPC), GroupName: aws.String(name), Description: aws.String(name + " group"),
		})
		if err != nil {
			t.Fatalf("CreateSecurityGroup %s: %v", name, err)
		}
		return *out.GroupId
	}
	tu.NodeSG, tu.ClientSG, tu.DBSG = group("node"), group("RDSDbAccessSG"), group("RDSDbSG")
	rule, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(tu.DBSG), IpPermissions: []types.IpPermission{Permission("tcp", 5432, 5432, tu.ClientSG)},
	})
	if err != nil {
		t.Fatalf("AuthorizeSecurityGroupIngress: %v", err)
	}
	tu.DBRule = *rule.SecurityGroupRules[0].SecurityGroupRuleId
	return tu
}
