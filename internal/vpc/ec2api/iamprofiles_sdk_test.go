package ec2api_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestIamInstanceProfiles: an instance launched with a profile (by name)
// and one associated later (by ARN) show it in DescribeInstances; an
// unknown profile and a second association are refused.
func TestIamInstanceProfiles(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	ctx := context.Background()
	if _, err := env.IAM().CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("node")}); err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:iam::111122223333:instance-profile/node"
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	run := func(p *types.IamInstanceProfileSpecification) (*ec2.RunInstancesOutput, error) {
		return env.Client.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Large,
			SubnetId: subnet.SubnetId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1), IamInstanceProfile: p})
	}
	out, err := run(&types.IamInstanceProfileSpecification{Name: aws.String("node")})
	if err != nil {
		t.Fatal(err)
	}
	if p := out.Instances[0].IamInstanceProfile; p == nil || aws.ToString(p.Arn) != arn || len(aws.ToString(p.Id)) != 21 {
		t.Fatalf("RunInstances IamInstanceProfile = %+v", p)
	}
	_, err = run(&types.IamInstanceProfileSpecification{Name: aws.String("none")})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")

	plain := env.NewInstance(t, *subnet.SubnetId, "m5.large")
	assoc, err := env.Client.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId: plain.InstanceId, IamInstanceProfile: &types.IamInstanceProfileSpecification{Arn: aws.String(arn)}})
	if err != nil {
		t.Fatal(err)
	}
	if a := assoc.IamInstanceProfileAssociation; aws.ToString(a.InstanceId) != *plain.InstanceId || aws.ToString(a.IamInstanceProfile.Arn) != arn {
		t.Fatalf("association = %+v", a)
	}
	_, err = env.Client.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{
		InstanceId: plain.InstanceId, IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String("node")}})
	vpctest.ExpectCode(t, err, "IncorrectState")
	desc, err := env.Client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{*plain.InstanceId}})
	if err != nil {
		t.Fatal(err)
	}
	if p := desc.Reservations[0].Instances[0].IamInstanceProfile; p == nil || aws.ToString(p.Arn) != arn {
		t.Fatalf("DescribeInstances IamInstanceProfile = %+v", p)
	}
}
