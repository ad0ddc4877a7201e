//go:build moto

package conformance

import (
	"context"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// run is one backend's state while the script runs: the client and the ids it created, by
// the script's own names, so that later steps can refer to them.
type run struct {
	c   *ec2.Client
	ids map[string]string
	// norm renames ids the way the comparison will, so that steps can order lists by it: EC2
	// promises no order for an ENI's groups, and raw ids are random.
	norm *idNormaliser
}

// step is one request and a projection of its answer onto what podsg relies on. Comparing
// projections rather than whole responses keeps the test about semantics: both emulators add
// fields the other lacks, which is not a difference that matters.
type step struct {
	name string
	do   func(ctx context.Context, r *run) (any, error)
}

func group(r *run, name string) []types.IpPermission {
	return []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
		UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(r.ids[name])}}}}
}

func filter(name string, values ...string) types.Filter {
	return types.Filter{Name: aws.String(name), Values: values}
}

type rule struct {
	Protocol string
	From, To int32
	CIDRs    []string
	Groups   []string
}

func rules(ps []types.IpPermission) []rule {
	var out []rule
	for _, p := range ps {
		r := rule{Protocol: aws.ToString(p.IpProtocol), From: aws.ToInt32(p.FromPort), To: aws.ToInt32(p.ToPort)}
		for _, c := range p.IpRanges {
			r.CIDRs = append(r.CIDRs, aws.ToString(c.CidrIp))
		}
		for _, g := range p.UserIdGroupPairs {
			r.Groups = append(r.Groups, aws.ToString(g.GroupId))
		}
		out = append(out, r)
	}
	return out
}

type eniView struct {
	ID, Subnet, Status, Description, Instance string
	DeviceIndex                               int32
	Groups                                    []string
	Tags                                      map[string]string
	HasMAC, HasIP                             bool
}

func enis(r *run, ns []types.NetworkInterface) []eniView {
	out := make([]eniView, 0, len(ns))
	for _, n := range ns {
		v := eniView{ID: aws.ToString(n.NetworkInterfaceId), Subnet: aws.ToString(n.SubnetId), Status: string(n.Status),
			Description: aws.ToString(n.Description), HasMAC: aws.ToString(n.MacAddress) != "", HasIP: aws.ToString(n.PrivateIpAddress) != ""}
		for _, g := range n.Groups {
			v.Groups = append(v.Groups, aws.ToString(g.GroupId))
		}
		sort.Slice(v.Groups, func(i, j int) bool { return r.norm.normalise(v.Groups[i]) < r.norm.normalise(v.Groups[j]) })
		if a := n.Attachment; a != nil {
			v.Instance, v.DeviceIndex = aws.ToString(a.InstanceId), aws.ToInt32(a.DeviceIndex)
		}
		for _, t := range n.TagSet {
			if v.Tags == nil {
				v.Tags = map[string]string{}
			}
			v.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceIndex < out[j].DeviceIndex })
	return out
}

// script is the sequence both backends run: a VPC like the seed tutorial's, a database group
// admitting clients on 5432, an instance, ENIs, filters, pagination, and deletion in dependency
// order with the errors EC2 documents.
var script = []step{
	{"CreateVpc", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
		if err != nil {
			return nil, err
		}
		r.ids["vpc"] = aws.ToString(o.Vpc.VpcId)
		return []string{r.ids["vpc"], aws.ToString(o.Vpc.CidrBlock)}, nil
	}},
	{"DescribeSecurityGroups default group", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", r.ids["vpc"])}})
		if err != nil {
			return nil, err
		}
		var names []string
		for _, g := range o.SecurityGroups {
			names = append(names, aws.ToString(g.GroupName))
			r.ids["default-sg"] = aws.ToString(g.GroupId)
		}
		return names, nil
	}},
	{"CreateSubnet", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(r.ids["vpc"]), CidrBlock: aws.String("10.0.0.0/24")})
		if err != nil {
			return nil, err
		}
		r.ids["subnet"] = aws.ToString(o.Subnet.SubnetId)
		return []any{r.ids["subnet"], aws.ToString(o.Subnet.VpcId), aws.ToString(o.Subnet.CidrBlock), aws.ToInt32(o.Subnet.AvailableIpAddressCount)}, nil
	}},
	{"CreateSubnet outside the VPC", func(ctx context.Context, r *run) (any, error) {
		return r.c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: aws.String(r.ids["vpc"]), CidrBlock: aws.String("10.9.0.0/24")})
	}},
	{"CreateSecurityGroup db", createGroup("db")},
	{"CreateSecurityGroup clients", createGroup("clients")},
	{"CreateSecurityGroup duplicate name", createGroup("db")},
	{"AuthorizeSecurityGroupIngress from group", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(r.ids["db"]), IpPermissions: group(r, "clients")})
		if err != nil {
			return nil, err
		}
		return aws.ToBool(o.Return), nil
	}},
	{"AuthorizeSecurityGroupIngress duplicate", func(ctx context.Context, r *run) (any, error) {
		return r.c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(r.ids["db"]), IpPermissions: group(r, "clients")})
	}},
	{"AuthorizeSecurityGroupEgress default rule again", func(ctx context.Context, r *run) (any, error) {
		return r.c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(r.ids["clients"]),
			IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	}},
	{"DescribeSecurityGroups db rules", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{r.ids["db"]}})
		if err != nil {
			return nil, err
		}
		g := o.SecurityGroups[0]
		return []any{aws.ToString(g.GroupName), aws.ToString(g.VpcId), rules(g.IpPermissions), rules(g.IpPermissionsEgress)}, nil
	}},
	{"DescribeSecurityGroups unknown id", func(ctx context.Context, r *run) (any, error) {
		return r.c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{"sg-0123456789abcdef0"}})
	}},
	{"RunInstances", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Xlarge,
			SubnetId: aws.String(r.ids["subnet"]), SecurityGroupIds: []string{r.ids["clients"]}, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		if err != nil {
			return nil, err
		}
		i := o.Instances[0]
		r.ids["instance"] = aws.ToString(i.InstanceId)
		return []any{r.ids["instance"], string(i.InstanceType), aws.ToString(i.SubnetId), aws.ToString(i.VpcId)}, nil
	}},
	{"DescribeNetworkInterfaces of the instance", describeENIs(func(r *run) []types.Filter {
		return []types.Filter{filter("attachment.instance-id", r.ids["instance"])}
	})},
	{"CreateNetworkInterface", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(r.ids["subnet"]),
			Groups: []string{r.ids["db"], r.ids["clients"]}, Description: aws.String("branch for pod a")})
		if err != nil {
			return nil, err
		}
		r.ids["eni"] = aws.ToString(o.NetworkInterface.NetworkInterfaceId)
		return enis(r, []types.NetworkInterface{*o.NetworkInterface}), nil
	}},
	{"CreateTags", func(ctx context.Context, r *run) (any, error) {
		return r.c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{r.ids["eni"]},
			Tags: []types.Tag{{Key: aws.String("podsg.io/cluster"), Value: aws.String("demo")}}})
	}},
	{"DescribeNetworkInterfaces by tag", describeENIs(func(r *run) []types.Filter {
		return []types.Filter{filter("tag:podsg.io/cluster", "demo")}
	})},
	{"DescribeNetworkInterfaces by group and description", describeENIs(func(r *run) []types.Filter {
		return []types.Filter{filter("group-id", r.ids["db"]), filter("description", "branch for pod a")}
	})},
	{"AttachNetworkInterface", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(r.ids["eni"]),
			InstanceId: aws.String(r.ids["instance"]), DeviceIndex: aws.Int32(1)})
		if err != nil {
			return nil, err
		}
		r.ids["attachment"] = aws.ToString(o.AttachmentId)
		return r.ids["attachment"] != "", nil
	}},
	{"DescribeNetworkInterfaces attached", describeENIs(func(r *run) []types.Filter {
		return []types.Filter{filter("attachment.instance-id", r.ids["instance"])}
	})},
	{"DeleteNetworkInterface in use", deleteENI},
	{"DeleteSecurityGroup in use", deleteGroup("db")},
	{"DetachNetworkInterface", func(ctx context.Context, r *run) (any, error) {
		return r.c.DetachNetworkInterface(ctx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(r.ids["attachment"])})
	}},
	{"DeleteNetworkInterface", deleteENI},
	{"DeleteNetworkInterface again", deleteENI},
	{"DescribeNetworkInterfaces deleted id", func(ctx context.Context, r *run) (any, error) {
		return r.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{r.ids["eni"]}})
	}},
	{"DescribeNetworkInterfaces paginated", func(ctx context.Context, r *run) (any, error) {
		for range 6 {
			if _, err := r.c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(r.ids["subnet"]),
				TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface,
					Tags: []types.Tag{{Key: aws.String("page"), Value: aws.String("yes")}}}}}); err != nil {
				return nil, err
			}
		}
		var sizes []int
		p := ec2.NewDescribeNetworkInterfacesPaginator(r.c, &ec2.DescribeNetworkInterfacesInput{
			Filters: []types.Filter{filter("tag:page", "yes")}, MaxResults: aws.Int32(5)})
		for p.HasMorePages() {
			o, err := p.NextPage(ctx)
			if err != nil {
				return nil, err
			}
			sizes = append(sizes, len(o.NetworkInterfaces))
		}
		return sizes, nil
	}},
	{"RevokeSecurityGroupIngress", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(r.ids["db"]), IpPermissions: group(r, "clients")})
		if err != nil {
			return nil, err
		}
		return aws.ToBool(o.Return), nil
	}},
	{"RevokeSecurityGroupIngress again", func(ctx context.Context, r *run) (any, error) {
		return r.c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(r.ids["db"]), IpPermissions: group(r, "clients")})
	}},
	{"DeleteSecurityGroup", deleteGroup("db")},
	{"DeleteSecurityGroup unknown", deleteGroup("db")},
	{"TerminateInstances", func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{r.ids["instance"]}})
		if err != nil {
			return nil, err
		}
		return aws.ToString(o.TerminatingInstances[0].InstanceId), nil
	}},
	{"DescribeNetworkInterfaces malformed id", func(ctx context.Context, r *run) (any, error) {
		return r.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-zz"}})
	}},
	{"DeleteVpc with a subnet", func(ctx context.Context, r *run) (any, error) {
		return r.c.DeleteVpc(ctx, &ec2.DeleteVpcInput{VpcId: aws.String(r.ids["vpc"])})
	}},
}

func createGroup(name string) func(ctx context.Context, r *run) (any, error) {
	return func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: aws.String(r.ids["vpc"]),
			GroupName: aws.String(name), Description: aws.String(name + " group")})
		if err != nil {
			return nil, err
		}
		r.ids[name] = aws.ToString(o.GroupId)
		return r.ids[name], nil
	}
}

func deleteGroup(name string) func(ctx context.Context, r *run) (any, error) {
	return func(ctx context.Context, r *run) (any, error) {
		return r.c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(r.ids[name])})
	}
}

func deleteENI(ctx context.Context, r *run) (any, error) {
	return r.c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(r.ids["eni"])})
}

func describeENIs(filters func(*run) []types.Filter) func(ctx context.Context, r *run) (any, error) {
	return func(ctx context.Context, r *run) (any, error) {
		o, err := r.c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: filters(r)})
		if err != nil {
			return nil, err
		}
		return enis(r, o.NetworkInterfaces), nil
	}
}
