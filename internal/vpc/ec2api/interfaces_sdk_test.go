package ec2api_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func TestNetworkInterfaceLifecycleAndFilters(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	sg := env.NewGroup(t, *vpc.VpcId, "pods")
	inst := env.NewInstance(t, *subnet.SubnetId, "m5.large")

	out, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{
		SubnetId: subnet.SubnetId, Description: aws.String("pod eni"), Groups: []string{sg},
		SecondaryPrivateIpAddressCount: aws.Int32(2),
		TagSpecifications:              []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("owner"), Value: aws.String("podsg")}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	eni := out.NetworkInterface
	switch {
	case !strings.HasPrefix(*eni.MacAddress, "02:") || len(*eni.MacAddress) != 17:
		t.Errorf("mac %s", *eni.MacAddress)
	case eni.Status != types.NetworkInterfaceStatusAvailable || *eni.RequesterManaged || eni.InterfaceType != types.NetworkInterfaceTypeInterface:
		t.Errorf("status %s requesterManaged %v type %s", eni.Status, *eni.RequesterManaged, eni.InterfaceType)
	case len(eni.PrivateIpAddresses) != 3 || !*eni.PrivateIpAddresses[0].Primary:
		t.Errorf("want primary + 2 secondary addresses: %+v", eni.PrivateIpAddresses)
	}
	id := *eni.NetworkInterfaceId
	env.Attach(t, id, *inst.InstanceId, 1)

	tests := map[string]struct {
		f    types.Filter
		want int
	}{
		"network-interface-id":   {filter("network-interface-id", id), 1},
		"description":            {filter("description", "pod*"), 1},
		"interface-type":         {filter("interface-type", "interface"), 2},
		"subnet-id":              {filter("subnet-id", *subnet.SubnetId), 2},
		"vpc-id":                 {filter("vpc-id", *vpc.VpcId), 2},
		"group-id":               {filter("group-id", sg), 1},
		"status":                 {filter("status", "in-use"), 2},
		"private-ip-address":     {filter("private-ip-address", *eni.PrivateIpAddresses[2].PrivateIpAddress), 1},
		"mac-address":            {filter("mac-address", *eni.MacAddress), 1},
		"tag":                    {filter("tag:owner", "podsg"), 1},
		"tag-key":                {filter("tag-key", "owner"), 1},
		"attachment.instance-id": {filter("attachment.instance-id", *inst.InstanceId), 2},
		"attachment.status":      {filter("attachment.status", "attached"), 2},
		"no match":               {filter("status", "available"), 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{tc.f}})
			if err != nil {
				t.Fatal(err)
			}
			if len(got.NetworkInterfaces) != tc.want {
				t.Errorf("got %d interfaces, want %d", len(got.NetworkInterfaces), tc.want)
			}
		})
	}

	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: &id})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterface.InUse")
	got, _ := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	_, err = c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: got.NetworkInterfaces[0].Attachment.AttachmentId})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: &id}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: &id})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String("eni-12")})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterfaceID.Malformed")
}

func TestAttachLimits(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	inst := env.NewInstance(t, *subnet.SubnetId, "m5.large") // 3 ENIs
	attach := func(index int32) error {
		eni := env.NewENI(t, *subnet.SubnetId, "")
		_, err := c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: eni.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(index)})
		return err
	}
	if err := attach(1); err != nil {
		t.Fatal(err)
	}
	vpctest.ExpectCode(t, attach(1), "InvalidParameterValue")
	if err := attach(2); err != nil {
		t.Fatal(err)
	}
	vpctest.ExpectCode(t, attach(3), "AttachmentLimitExceeded")
	_, err := c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: inst.NetworkInterfaces[0].Attachment.AttachmentId})
	vpctest.ExpectCode(t, err, "OperationNotPermitted")
	_, err = c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: inst.NetworkInterfaces[0].NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(5)})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterface.InUse")
	_, err = c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: inst.NetworkInterfaces[0].NetworkInterfaceId, InstanceId: aws.String("i-0123456789abcdef0"), DeviceIndex: aws.Int32(1)})
	vpctest.ExpectCode(t, err, "InvalidInstanceID.NotFound")
}

func TestPrivateIPAssignment(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	inst := env.NewInstance(t, *subnet.SubnetId, "m5.large") // 10 IPv4 per ENI
	primary := *inst.NetworkInterfaces[0].NetworkInterfaceId
	other := env.NewENI(t, *subnet.SubnetId, "")

	out, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &primary, SecondaryPrivateIpAddressCount: aws.Int32(8)})
	if err != nil || len(out.AssignedPrivateIpAddresses) != 8 {
		t.Fatalf("assign 8: %v %v", out, err)
	}
	if _, err := c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &primary, PrivateIpAddresses: []string{"10.0.0.200"}}); err != nil {
		t.Fatalf("assign explicit: %v", err)
	}
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &primary, SecondaryPrivateIpAddressCount: aws.Int32(1)})
	vpctest.ExpectCode(t, err, "PrivateIpAddressLimitExceeded")
	if _, err := c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: &primary, PrivateIpAddresses: []string{"10.0.0.200"}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &primary, PrivateIpAddresses: []string{*other.PrivateIpAddress}})
	vpctest.ExpectCode(t, err, "InvalidIPAddress.InUse")
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &primary, PrivateIpAddresses: []string{"10.0.0.201"}, SecondaryPrivateIpAddressCount: aws.Int32(1)})
	vpctest.ExpectCode(t, err, "InvalidParameterCombination")
	_, err = c.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: &primary, PrivateIpAddresses: []string{*inst.PrivateIpAddress}})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	_, err = c.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: &primary, PrivateIpAddresses: []string{"10.9.0.1"}})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
}

func TestModifyNetworkInterfaceAttribute(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	eni := *env.NewENI(t, *subnet.SubnetId, "").NetworkInterfaceId
	var groups []string
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		groups = append(groups, env.NewGroup(t, *vpc.VpcId, n))
	}
	modify := func(in *ec2.ModifyNetworkInterfaceAttributeInput) error {
		in.NetworkInterfaceId = &eni
		_, err := c.ModifyNetworkInterfaceAttribute(ctx, in)
		return err
	}
	if err := modify(&ec2.ModifyNetworkInterfaceAttributeInput{Groups: groups[:5]}); err != nil {
		t.Fatal(err)
	}
	vpctest.ExpectCode(t, modify(&ec2.ModifyNetworkInterfaceAttributeInput{Groups: groups}), "SecurityGroupsPerInterfaceLimitExceeded")
	if err := modify(&ec2.ModifyNetworkInterfaceAttributeInput{SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}}); err != nil {
		t.Fatal(err)
	}
	if err := modify(&ec2.ModifyNetworkInterfaceAttributeInput{Description: &types.AttributeValue{Value: aws.String("changed")}}); err != nil {
		t.Fatal(err)
	}
	vpctest.ExpectCode(t, modify(&ec2.ModifyNetworkInterfaceAttributeInput{Groups: groups[:1], Description: &types.AttributeValue{Value: aws.String("x")}}), "InvalidParameterCombination")
	out, _ := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni}})
	got := out.NetworkInterfaces[0]
	if len(got.Groups) != 5 || *got.SourceDestCheck || *got.Description != "changed" {
		t.Errorf("modifications not visible: groups %d sdc %v desc %q", len(got.Groups), *got.SourceDestCheck, *got.Description)
	}
}

func TestDescribeNetworkInterfacesPagination(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	for range 23 {
		env.NewENI(t, *subnet.SubnetId, "")
	}
	seen := map[string]bool{}
	for p := ec2.NewDescribeNetworkInterfacesPaginator(c, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5)}); p.HasMorePages(); {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.NetworkInterfaces) > 5 {
			t.Fatalf("page of %d > MaxResults", len(out.NetworkInterfaces))
		}
		for _, e := range out.NetworkInterfaces {
			if seen[*e.NetworkInterfaceId] {
				t.Fatalf("%s seen twice", *e.NetworkInterfaceId)
			}
			seen[*e.NetworkInterfaceId] = true
		}
	}
	if len(seen) != 23 {
		t.Errorf("paged %d ENIs, want 23", len(seen))
	}
	_, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(4)})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NextToken: aws.String("!!not-a-token")})
	vpctest.ExpectCode(t, err, "InvalidPaginationToken")
	var someID string
	for id := range seen {
		someID = id
	}
	_, err = c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{someID}, MaxResults: aws.Int32(5)})
	vpctest.ExpectCode(t, err, "InvalidParameterCombination")
}

func TestCreateNetworkInterfaceIdempotencyAndValidation(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	create := func(in ec2.CreateNetworkInterfaceInput) (*ec2.CreateNetworkInterfaceOutput, error) {
		in.SubnetId = subnet.SubnetId
		return c.CreateNetworkInterface(ctx, &in)
	}
	a, err := create(ec2.CreateNetworkInterfaceInput{ClientToken: aws.String("t1"), Description: aws.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := create(ec2.CreateNetworkInterfaceInput{ClientToken: aws.String("t1"), Description: aws.String("x")})
	if err != nil || *b.NetworkInterface.NetworkInterfaceId != *a.NetworkInterface.NetworkInterfaceId || *b.ClientToken != "t1" {
		t.Fatalf("replay returned a different ENI: %v", err)
	}
	_, err = create(ec2.CreateNetworkInterfaceInput{ClientToken: aws.String("t1"), Description: aws.String("y")})
	vpctest.ExpectCode(t, err, "IdempotentParameterMismatch")
	_, err = create(ec2.CreateNetworkInterfaceInput{PrivateIpAddress: a.NetworkInterface.PrivateIpAddress})
	vpctest.ExpectCode(t, err, "InvalidIPAddress.InUse")
	_, err = create(ec2.CreateNetworkInterfaceInput{PrivateIpAddress: aws.String("10.0.0.1")})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	_, err = create(ec2.CreateNetworkInterfaceInput{InterfaceType: "efa"})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	_, err = create(ec2.CreateNetworkInterfaceInput{Groups: []string{"sg-0123456789abcdef0"}})
	vpctest.ExpectCode(t, err, "InvalidGroup.NotFound")
	_, err = create(ec2.CreateNetworkInterfaceInput{DryRun: aws.Bool(true)})
	vpctest.ExpectCode(t, err, "DryRunOperation")
	_, err = c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-0123456789abcdef0")})
	vpctest.ExpectCode(t, err, "InvalidSubnetID.NotFound")
	out, _ := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{})
	if len(out.NetworkInterfaces) != 1 {
		t.Errorf("failed calls left %d ENIs, want 1", len(out.NetworkInterfaces))
	}
}
