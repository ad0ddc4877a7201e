package ec2api_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func tag(k, v string) types.Tag { return types.Tag{Key: aws.String(k), Value: aws.String(v)} }

func TestTags(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	sg := env.NewGroup(t, *vpc.VpcId, "g")
	inst := env.NewInstance(t, *subnet.SubnetId, "m5.large")
	eni := *env.NewENI(t, *subnet.SubnetId, "").NetworkInterfaceId
	ids := []string{*vpc.VpcId, *subnet.SubnetId, sg, *inst.InstanceId, eni}
	if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{tag("team", "net"), tag("env", "dev")}}); err != nil {
		t.Fatal(err)
	}
	count := func(fs ...types.Filter) int {
		t.Helper()
		n := 0
		for p := ec2.NewDescribeTagsPaginator(c, &ec2.DescribeTagsInput{Filters: fs, MaxResults: aws.Int32(5)}); p.HasMorePages(); {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(out.Tags)
		}
		return n
	}
	tests := map[string]struct {
		fs   []types.Filter
		want int
	}{
		"all":           {nil, 10},
		"resource-id":   {[]types.Filter{filter("resource-id", eni)}, 2},
		"resource-type": {[]types.Filter{filter("resource-type", "instance", "security-group")}, 4},
		"key":           {[]types.Filter{filter("key", "team")}, 5},
		"value":         {[]types.Filter{filter("value", "de*")}, 5},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := count(tc.fs...); got != tc.want {
				t.Errorf("got %d tags, want %d", got, tc.want)
			}
		})
	}
	// A value that does not match keeps the tag; a bare key removes it.
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: []types.Tag{tag("team", "other")}}); err != nil {
		t.Fatal(err)
	}
	if got := count(filter("key", "team")); got != 5 {
		t.Errorf("mismatched value deleted tags: %d left", got)
	}
	if _, err := c.DeleteTags(ctx, &ec2.DeleteTagsInput{Resources: ids, Tags: []types.Tag{{Key: aws.String("team")}}}); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != 5 {
		t.Errorf("after deleting team want 5 tags, got %d", got)
	}
	_, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids[:1], Tags: []types.Tag{tag("aws:reserved", "x")}})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{"eni-0123456789abcdef0"}, Tags: []types.Tag{tag("a", "b")}})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterfaceID.NotFound")
	_, err = c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: ids, Tags: []types.Tag{tag("a", "b")}, DryRun: aws.Bool(true)})
	vpctest.ExpectCode(t, err, "DryRunOperation")
	_, err = c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.5.0.0/16"),
		TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: []types.Tag{tag("a", "b")}}}})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
}
