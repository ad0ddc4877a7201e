package ec2api_test

import (
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

var idPattern = regexp.MustCompile(`^[a-z-]+-[0-9a-f]{17}$`)

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

func TestVPCLifecycle(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()

	out, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{
		CidrBlock: aws.String("10.1.0.0/16"),
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeVpc, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("main")}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	vpc := out.Vpc
	if !idPattern.MatchString(*vpc.VpcId) || *vpc.CidrBlock != "10.1.0.0/16" || vpc.State != types.VpcStateAvailable {
		t.Fatalf("unexpected vpc %+v", vpc)
	}
	sgs, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", *vpc.VpcId)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sgs.SecurityGroups) != 1 || *sgs.SecurityGroups[0].GroupName != "default" {
		t.Fatalf("want one default group, got %+v", sgs.SecurityGroups)
	}

	for name, f := range map[string]types.Filter{
		"cidr":    filter("cidr-block", "10.1.0.0/16"),
		"tag":     filter("tag:Name", "main"),
		"tag-key": filter("tag-key", "Name"),
		"glob":    filter("vpc-id", "vpc-*"),
	} {
		got, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{f}})
		if err != nil || len(got.Vpcs) != 1 {
			t.Errorf("filter %s: %d vpcs, err %v", name, len(got.Vpcs), err)
		}
	}
	none, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{filter("tag:Name", "other")}})
	if err != nil || len(none.Vpcs) != 0 {
		t.Errorf("non-matching tag filter: %v, %v", none.Vpcs, err)
	}
	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{filter("no-such-filter", "x")}})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")

	subnet := env.NewSubnet(t, *vpc.VpcId, "10.1.1.0/24")
	_, err = c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: vpc.VpcId})
	vpctest.ExpectCode(t, err, "DependencyViolation")
	if _, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: subnet.SubnetId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: vpc.VpcId}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{VpcIds: []string{*vpc.VpcId}})
	vpctest.ExpectCode(t, err, "InvalidVpcID.NotFound")
	left, _ := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{})
	if len(left.SecurityGroups) != 0 {
		t.Errorf("default group outlived its VPC: %+v", left.SecurityGroups)
	}
}

func TestCreateVPCAndSubnetErrors(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")

	tests := map[string]struct {
		call func() error
		code string
	}{
		"vpc cidr garbage": {func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/33")})
			return err
		}, "InvalidParameterValue"},
		"vpc cidr too big": {func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/8")})
			return err
		}, "InvalidVpc.Range"},
		"vpc missing cidr": {func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{})
			return err
		}, "MissingParameter"},
		"subnet outside vpc": {func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.VpcId, CidrBlock: aws.String("10.9.0.0/24")})
			return err
		}, "InvalidSubnet.Range"},
		"subnet overlap": {func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.VpcId, CidrBlock: aws.String("10.0.0.128/25")})
			return err
		}, "InvalidSubnet.Conflict"},
		"subnet bad zone": {func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.VpcId, CidrBlock: aws.String("10.0.1.0/24"), AvailabilityZone: aws.String("eu-west-1a")})
			return err
		}, "InvalidParameterValue"},
		"subnet malformed vpc": {func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String("vpc-xyz"), CidrBlock: aws.String("10.0.1.0/24")})
			return err
		}, "InvalidVpcID.Malformed"},
		"subnet unknown vpc": {func() error {
			_, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String("vpc-0123456789abcdef0"), CidrBlock: aws.String("10.0.1.0/24")})
			return err
		}, "InvalidVpcID.NotFound"},
		"delete unknown subnet": {func() error {
			_, err := c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: aws.String("subnet-0123456789abcdef0")})
			return err
		}, "InvalidSubnetID.NotFound"},
		"dry run": {func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.2.0.0/16"), DryRun: aws.Bool(true)})
			return err
		}, "DryRunOperation"},
		"dry run of a failing call": {func() error {
			_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/8"), DryRun: aws.Bool(true)})
			return err
		}, "InvalidVpc.Range"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) { vpctest.ExpectCode(t, tc.call(), tc.code) })
	}
	vpcs, _ := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if len(vpcs.Vpcs) != 1 {
		t.Errorf("failed and dry-run calls created VPCs: %d", len(vpcs.Vpcs))
	}
}

func TestSubnetAddressing(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	s := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	if *s.AvailableIpAddressCount != 251 || *s.AvailabilityZone != "us-west-2a" {
		t.Fatalf("subnet = count %d zone %s, want 251 us-west-2a", *s.AvailableIpAddressCount, *s.AvailabilityZone)
	}
	small := env.NewSubnet(t, *vpc.VpcId, "10.0.1.0/28")
	var ips []string
	for range 11 {
		ips = append(ips, *env.NewENI(t, *small.SubnetId, "").PrivateIpAddress)
	}
	if ips[0] != "10.0.1.4" || ips[10] != "10.0.1.14" {
		t.Errorf("allocated %v, want 10.0.1.4 … 10.0.1.14 (AWS reserves .0-.3 and .15)", ips)
	}
	_, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: small.SubnetId})
	vpctest.ExpectCode(t, err, "InsufficientFreeAddressesInSubnet")
	got, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("available-ip-address-count", "0")}})
	if err != nil || len(got.Subnets) != 1 || *got.Subnets[0].SubnetId != *small.SubnetId {
		t.Errorf("available-ip-address-count filter: %+v %v", got.Subnets, err)
	}
	_, err = c.DeleteSubnet(ctx, &ec2.DeleteSubnetInput{SubnetId: small.SubnetId})
	vpctest.ExpectCode(t, err, "DependencyViolation")
}
