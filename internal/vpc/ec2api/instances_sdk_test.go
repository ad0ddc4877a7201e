package ec2api_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

var instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{17}$`)

func TestRunDescribeTerminate(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	sg := env.NewGroup(t, *vpc.VpcId, "nodes")

	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Xlarge, SubnetId: subnet.SubnetId,
		SecurityGroupIds: []string{sg}, MinCount: aws.Int32(1), MaxCount: aws.Int32(6),
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{{Key: aws.String("Name"), Value: aws.String("node")}}},
			{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{{Key: aws.String("role"), Value: aws.String("primary")}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Instances) != 6 || run.ReservationId == nil {
		t.Fatalf("launched %d instances, want 6 in one reservation", len(run.Instances))
	}
	first := run.Instances[0]
	switch {
	case !instanceIDPattern.MatchString(*first.InstanceId):
		t.Errorf("instance id %s is not i- + 17 hex", *first.InstanceId)
	case first.State.Name != types.InstanceStateNameRunning || *first.Placement.AvailabilityZone != "us-west-2a":
		t.Errorf("state %s zone %s", first.State.Name, *first.Placement.AvailabilityZone)
	case len(first.NetworkInterfaces) != 1 || *first.NetworkInterfaces[0].Attachment.DeviceIndex != 0:
		t.Errorf("want a primary ENI at device index 0: %+v", first.NetworkInterfaces)
	case *first.NetworkInterfaces[0].PrivateIpAddress != *first.PrivateIpAddress || *first.SecurityGroups[0].GroupId != sg:
		t.Errorf("primary ENI and instance disagree: %+v", first)
	}

	filters := map[string]struct {
		f    types.Filter
		want int
	}{
		"instance-id":         {filter("instance-id", *first.InstanceId), 1},
		"instance-state-name": {filter("instance-state-name", "running"), 6},
		"subnet-id":           {filter("subnet-id", *subnet.SubnetId), 6},
		"vpc-id":              {filter("vpc-id", *vpc.VpcId), 6},
		"tag":                 {filter("tag:Name", "node"), 6},
		"private-ip-address":  {filter("private-ip-address", *first.PrivateIpAddress), 1},
		"instance-type":       {filter("instance-type", "m5.xlarge"), 6},
	}
	for name, tc := range filters {
		t.Run(name, func(t *testing.T) {
			out, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{tc.f}})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, r := range out.Reservations {
				n += len(r.Instances)
			}
			if n != tc.want {
				t.Errorf("got %d instances, want %d", n, tc.want)
			}
		})
	}
	pages, seen := 0, 0
	for p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{MaxResults: aws.Int32(5)}); p.HasMorePages(); pages++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out.Reservations {
			seen += len(r.Instances)
		}
	}
	if pages != 2 || seen != 6 {
		t.Errorf("paged %d instances over %d pages, want 6 over 2", seen, pages)
	}

	// A second ENI that survives termination.
	extra := env.NewENI(t, *subnet.SubnetId, "")
	env.Attach(t, *extra.NetworkInterfaceId, *first.InstanceId, 1)
	term, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*first.InstanceId}})
	if err != nil || term.TerminatingInstances[0].CurrentState.Name != types.InstanceStateNameTerminated {
		t.Fatalf("terminate: %+v %v", term, err)
	}
	_, err = c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*first.NetworkInterfaces[0].NetworkInterfaceId}})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	left, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*extra.NetworkInterfaceId}})
	if err != nil || left.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusAvailable {
		t.Fatalf("secondary ENI should be detached and kept: %+v %v", left, err)
	}
	gone, _ := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{filter("instance-state-name", "terminated")}})
	if len(gone.Reservations) != 1 {
		t.Errorf("terminated instance should stay visible for a while")
	}
	env.Clock.Step(time.Hour)
	_, err = c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{*first.InstanceId}})
	vpctest.ExpectCode(t, err, "InvalidInstanceID.NotFound")
	_, err = c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-123"}})
	vpctest.ExpectCode(t, err, "InvalidInstanceID.Malformed")
}

func TestRunInstancesCapacityAndIdempotency(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	small := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/28")
	run := func(minN, maxN int32, token, typ string) (*ec2.RunInstancesOutput, error) {
		in := &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: types.InstanceType(typ), SubnetId: small.SubnetId, MinCount: aws.Int32(minN), MaxCount: aws.Int32(maxN)}
		if token != "" {
			in.ClientToken = aws.String(token)
		}
		return c.RunInstances(ctx, in)
	}
	_, err := run(12, 12, "", "t3.micro")
	vpctest.ExpectCode(t, err, "InsufficientFreeAddressesInSubnet")
	_, err = run(1, 1, "", "x1.bogus")
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	a, err := run(1, 1, "tok-1", "t3.micro")
	if err != nil {
		t.Fatal(err)
	}
	b, err := run(1, 1, "tok-1", "t3.micro")
	if err != nil || *b.Instances[0].InstanceId != *a.Instances[0].InstanceId {
		t.Fatalf("same client token should return the same instance: %v", err)
	}
	_, err = run(1, 1, "tok-1", "t3.small")
	vpctest.ExpectCode(t, err, "IdempotentParameterMismatch")
	rest, err := run(1, 50, "", "t3.micro")
	if err != nil || len(rest.Instances) != 10 {
		t.Fatalf("want the 10 instances that fit, got %v %v", rest, err)
	}
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	vpctest.ExpectCode(t, err, "MissingParameter")
}

func TestRunInstancesWithNetworkInterfaces(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	existing := env.NewENI(t, *subnet.SubnetId, "")
	out, err := c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-1"), InstanceType: types.InstanceTypeC5Large, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{
			{DeviceIndex: aws.Int32(0), SubnetId: subnet.SubnetId, PrivateIpAddress: aws.String("10.0.0.100"), SecondaryPrivateIpAddressCount: aws.Int32(2)},
			{DeviceIndex: aws.Int32(1), NetworkInterfaceId: existing.NetworkInterfaceId},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	inst := out.Instances[0]
	if *inst.PrivateIpAddress != "10.0.0.100" || len(inst.NetworkInterfaces) != 2 || len(inst.NetworkInterfaces[0].PrivateIpAddresses) != 3 {
		t.Fatalf("unexpected instance networking: %+v", inst.NetworkInterfaces)
	}
	_, err = c.RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SubnetId: subnet.SubnetId,
		NetworkInterfaces: []types.InstanceNetworkInterfaceSpecification{{DeviceIndex: aws.Int32(0), SubnetId: subnet.SubnetId}},
	})
	vpctest.ExpectCode(t, err, "InvalidParameterCombination")
}

func TestDescribeInstanceTypes(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	out, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large", "c5.18xlarge", "t3.nano"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[types.InstanceType][2]int32{"m5.large": {3, 10}, "c5.18xlarge": {15, 50}, "t3.nano": {2, 2}}
	for _, it := range out.InstanceTypes {
		w := want[it.InstanceType]
		if *it.NetworkInfo.MaximumNetworkInterfaces != w[0] || *it.NetworkInfo.Ipv4AddressesPerInterface != w[1] {
			t.Errorf("%s: %d ENIs %d IPs, want %v", it.InstanceType, *it.NetworkInfo.MaximumNetworkInterfaces, *it.NetworkInfo.Ipv4AddressesPerInterface, w)
		}
		delete(want, it.InstanceType)
	}
	if len(want) != 0 {
		t.Errorf("missing types %v", want)
	}
	_, err = c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"x9.huge"}})
	vpctest.ExpectCode(t, err, "InvalidInstanceType")
	n := 0
	for p := ec2.NewDescribeInstanceTypesPaginator(c, &ec2.DescribeInstanceTypesInput{MaxResults: aws.Int32(5)}); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.InstanceTypes)
	}
	if n != 31 {
		t.Errorf("paged %d types, want 31", n)
	}
	t3, err := c.DescribeInstanceTypes(ctx, &ec2.DescribeInstanceTypesInput{Filters: []types.Filter{filter("instance-type", "t3.*")}})
	if err != nil || len(t3.InstanceTypes) != 7 {
		t.Errorf("t3.* filter: %d types, %v", len(t3.InstanceTypes), err)
	}
}
