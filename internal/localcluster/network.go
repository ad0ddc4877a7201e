package localcluster

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// network is the VPC the cluster lives in.
type network struct {
	VPCID     string
	Subnets   []string // by Subnets' order
	ClusterSG string   // EKS's cluster security group: members talk to each other
	HostIP    string   // the root namespace's address in the VPC (apiserver, kubectl)
}

// instance is a node's EC2 instance.
type instance struct {
	ID, IP string
	AZ     string // its subnet's
}

// nodeInstanceName is the Name tag of the instance of node number index (1, 2, …).
func nodeInstanceName(index int) string { return fmt.Sprintf("%s-node-%d", ClusterName, index) }

// subnetOf spreads the nodes over the subnets (and so the zones), as an EKS node group spreads
// its instances: node 1 in the first, node 2 in the second, node 3 in the first again…
func subnetOf(index int) int { return (index - 1) % len(Subnets) }

func clusterTags(name string) []types.TagSpecification {
	tags := []types.Tag{{Key: aws.String(tagClusterKV), Value: aws.String(ClusterName)}, {Key: aws.String("Name"), Value: aws.String(name)}}
	var out []types.TagSpecification
	for _, rt := range []types.ResourceType{types.ResourceTypeVpc, types.ResourceTypeSubnet, types.ResourceTypeSecurityGroup,
		types.ResourceTypeNetworkInterface, types.ResourceTypeInstance} {
		out = append(out, types.TagSpecification{ResourceType: rt, Tags: tags})
	}
	return out
}

func tagSpec(rt types.ResourceType, name string) []types.TagSpecification {
	for _, s := range clusterTags(name) {
		if s.ResourceType == rt {
			return []types.TagSpecification{s}
		}
	}
	return nil
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

// ensureNetwork finds or creates the VPC, its subnets, the cluster security group and the
// host's ENI: re-running it changes nothing.
func ensureNetwork(ctx context.Context, c *ec2.Client) (*network, error) {
	n := &network{}
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{filter("tag:"+tagClusterKV, ClusterName)}})
	if err != nil {
		return nil, fmt.Errorf("looking up the VPC: %w", err)
	}
	if len(vpcs.Vpcs) > 0 {
		n.VPCID = aws.ToString(vpcs.Vpcs[0].VpcId)
	} else {
		out, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String(VPCCIDR), TagSpecifications: tagSpec(types.ResourceTypeVpc, ClusterName)})
		if err != nil {
			return nil, fmt.Errorf("creating the VPC: %w", err)
		}
		n.VPCID = aws.ToString(out.Vpc.VpcId)
	}
	if err := n.ensureSubnets(ctx, c); err != nil {
		return nil, err
	}
	if err := n.ensureClusterSG(ctx, c); err != nil {
		return nil, err
	}
	return n, n.ensureHostENI(ctx, c)
}

func (n *network) ensureSubnets(ctx context.Context, c *ec2.Client) error {
	have, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{filter("vpc-id", n.VPCID)}})
	if err != nil {
		return fmt.Errorf("looking up subnets: %w", err)
	}
	for i, s := range Subnets {
		idx := slices.IndexFunc(have.Subnets, func(x types.Subnet) bool { return aws.ToString(x.CidrBlock) == s.CIDR })
		if idx >= 0 {
			n.Subnets = append(n.Subnets, aws.ToString(have.Subnets[idx].SubnetId))
			continue
		}
		out, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: &n.VPCID, CidrBlock: aws.String(s.CIDR), AvailabilityZone: aws.String(s.AZ),
			TagSpecifications: tagSpec(types.ResourceTypeSubnet, fmt.Sprintf("%s-private-%d", ClusterName, i+1))})
		if err != nil {
			return fmt.Errorf("creating subnet %s: %w", s.CIDR, err)
		}
		n.Subnets = append(n.Subnets, aws.ToString(out.Subnet.SubnetId))
	}
	return nil
}

func (n *network) ensureClusterSG(ctx context.Context, c *ec2.Client) error {
	name := "eks-cluster-sg-" + ClusterName
	have, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", n.VPCID), filter("group-name", name)}})
	if err != nil {
		return fmt.Errorf("looking up the cluster security group: %w", err)
	}
	if len(have.SecurityGroups) > 0 {
		n.ClusterSG = aws.ToString(have.SecurityGroups[0].GroupId)
		return nil
	}
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: &n.VPCID, GroupName: &name,
		Description:       aws.String("EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any managed workloads."),
		TagSpecifications: tagSpec(types.ResourceTypeSecurityGroup, name)})
	if err != nil {
		return fmt.Errorf("creating the cluster security group: %w", err)
	}
	n.ClusterSG = aws.ToString(out.GroupId)
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &n.ClusterSG, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("-1"), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: &n.ClusterSG}}}}})
	if err != nil {
		return fmt.Errorf("letting cluster members talk to each other: %w", err)
	}
	return nil
}

// ensureHostENI gives the root namespace an ENI in the cluster security group, the way EKS
// gives its control plane ENIs in the VPC: the API server listens on its address.
func (n *network) ensureHostENI(ctx context.Context, c *ec2.Client) error {
	have, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		filter("vpc-id", n.VPCID), filter("tag:"+topo.AttachTag, "host")}})
	if err != nil {
		return fmt.Errorf("looking up the host ENI: %w", err)
	}
	if len(have.NetworkInterfaces) > 0 {
		n.HostIP = aws.ToString(have.NetworkInterfaces[0].PrivateIpAddress)
		return nil
	}
	spec := tagSpec(types.ResourceTypeNetworkInterface, ClusterName+"-control-plane")
	spec[0].Tags = append(spec[0].Tags, types.Tag{Key: aws.String(topo.AttachTag), Value: aws.String("host")})
	out, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: &n.Subnets[0], Groups: []string{n.ClusterSG},
		Description: aws.String("Amazon EKS " + ClusterName), TagSpecifications: spec})
	if err != nil {
		return fmt.Errorf("creating the host ENI: %w", err)
	}
	n.HostIP = aws.ToString(out.NetworkInterface.PrivateIpAddress)
	return nil
}

// ensureInstance finds or launches the instance of node number index, named
// nodeInstanceName(index), in subnet subnetOf(index).
func (n *network) ensureInstance(ctx context.Context, c *ec2.Client, index int) (instance, error) {
	name, sub := nodeInstanceName(index), subnetOf(index)
	have, err := c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		filter("vpc-id", n.VPCID), filter("tag:Name", name), filter("instance-state-name", "running")}})
	if err != nil {
		return instance{}, fmt.Errorf("looking up %s: %w", name, err)
	}
	if len(have.Reservations) > 0 && len(have.Reservations[0].Instances) > 0 {
		inst := have.Reservations[0].Instances[0]
		return instance{ID: aws.ToString(inst.InstanceId), IP: aws.ToString(inst.PrivateIpAddress), AZ: Subnets[sub].AZ}, nil
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: types.InstanceType(InstanceType),
		SubnetId: &n.Subnets[sub], SecurityGroupIds: []string{n.ClusterSG}, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: tagSpec(types.ResourceTypeInstance, name)})
	if err != nil {
		return instance{}, fmt.Errorf("launching %s: %w", name, err)
	}
	inst := run.Instances[0]
	return instance{ID: aws.ToString(inst.InstanceId), IP: aws.ToString(inst.PrivateIpAddress), AZ: Subnets[sub].AZ}, nil
}
