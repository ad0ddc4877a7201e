package vpctest

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Fixture builders: each creates one resource through the API and fails
// the test on error.

// NewVPC creates a VPC.
func (e *Env) NewVPC(t testing.TB, cidr string) types.Vpc {
	t.Helper()
	out, err := e.Client.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatalf("CreateVpc: %v", err)
	}
	return *out.Vpc
}

// NewSubnet creates a subnet in the default zone.
func (e *Env) NewSubnet(t testing.TB, vpcID, cidr string) types.Subnet {
	t.Helper()
	out, err := e.Client.CreateSubnet(context.Background(), &ec2.CreateSubnetInput{VpcId: aws.String(vpcID), CidrBlock: aws.String(cidr)})
	if err != nil {
		t.Fatalf("CreateSubnet: %v", err)
	}
	return *out.Subnet
}

// NewGroup creates a security group.
func (e *Env) NewGroup(t testing.TB, vpcID, name string) string {
	t.Helper()
	out, err := e.Client.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		VpcId: aws.String(vpcID), GroupName: aws.String(name), Description: aws.String(name + " group"),
	})
	if err != nil {
		t.Fatalf("CreateSecurityGroup: %v", err)
	}
	return *out.GroupId
}

// NewInstance launches one instance of the given type.
func (e *Env) NewInstance(t testing.TB, subnetID, instanceType string) types.Instance {
	t.Helper()
	out, err := e.Client.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceType(instanceType),
		SubnetId: aws.String(subnetID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	})
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	return out.Instances[0]
}

// NewENI creates a network interface of the given type ("" for a plain one).
func (e *Env) NewENI(t testing.TB, subnetID string, typ types.NetworkInterfaceCreationType) types.NetworkInterface {
	t.Helper()
	out, err := e.Client.CreateNetworkInterface(context.Background(), &ec2.CreateNetworkInterfaceInput{
		SubnetId: aws.String(subnetID), InterfaceType: typ,
	})
	if err != nil {
		t.Fatalf("CreateNetworkInterface: %v", err)
	}
	return *out.NetworkInterface
}

// Attach attaches an ENI and returns the attachment id.
func (e *Env) Attach(t testing.TB, eniID, instanceID string, index int32) string {
	t.Helper()
	out, err := e.Client.AttachNetworkInterface(context.Background(), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eniID), InstanceId: aws.String(instanceID), DeviceIndex: aws.Int32(index),
	})
	if err != nil {
		t.Fatalf("AttachNetworkInterface: %v", err)
	}
	return *out.AttachmentId
}

// Node is an instance with an attached trunk ENI, ready for branches.
type Node struct {
	VPC, Subnet, Instance, Trunk string
}

// NewNode builds a VPC, a /16 subnet, an instance and its trunk ENI.
func (e *Env) NewNode(t testing.TB, instanceType string) Node {
	t.Helper()
	vpc := e.NewVPC(t, "10.0.0.0/16")
	subnet := e.NewSubnet(t, *vpc.VpcId, "10.0.0.0/16")
	inst := e.NewInstance(t, *subnet.SubnetId, instanceType)
	trunk := e.NewENI(t, *subnet.SubnetId, types.NetworkInterfaceCreationTypeTrunk)
	e.Attach(t, *trunk.NetworkInterfaceId, *inst.InstanceId, 1)
	return Node{VPC: *vpc.VpcId, Subnet: *subnet.SubnetId, Instance: *inst.InstanceId, Trunk: *trunk.NetworkInterfaceId}
}
