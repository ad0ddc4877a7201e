package ec2api_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func tcp(port int32, peers ...string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(port), ToPort: aws.Int32(port)}
	for _, peer := range peers {
		if len(peer) > 3 && peer[:3] == "sg-" {
			p.UserIdGroupPairs = append(p.UserIdGroupPairs, types.UserIdGroupPair{GroupId: aws.String(peer)})
		} else {
			p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(peer)})
		}
	}
	return p
}

func TestSecurityGroupRules(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	web := env.NewGroup(t, *vpc.VpcId, "web")
	db := env.NewGroup(t, *vpc.VpcId, "db")

	rules, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{filter("group-id", db)}})
	if err != nil || len(rules.SecurityGroupRules) != 1 || !*rules.SecurityGroupRules[0].IsEgress || *rules.SecurityGroupRules[0].CidrIpv4 != "0.0.0.0/0" {
		t.Fatalf("new group should have only the default egress rule: %+v %v", rules.SecurityGroupRules, err)
	}
	_, err = c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: &db,
		IpPermissions: []types.IpPermission{{IpProtocol: aws.String("-1"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
	vpctest.ExpectCode(t, err, "InvalidPermission.Duplicate")

	auth, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &db, IpPermissions: []types.IpPermission{
		tcp(5432, web, "10.0.0.0/16"),
		{IpProtocol: aws.String("udp"), FromPort: aws.Int32(1000), ToPort: aws.Int32(2000), IpRanges: []types.IpRange{{CidrIp: aws.String("192.168.0.0/24"), Description: aws.String("range")}}},
		{IpProtocol: aws.String("icmp"), FromPort: aws.Int32(8), ToPort: aws.Int32(0), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
		{IpProtocol: aws.String("6"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []types.IpRange{{CidrIp: aws.String("1.2.3.4/32")}}},
		{IpProtocol: aws.String("50"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !*auth.Return || len(auth.SecurityGroupRules) != 6 {
		t.Fatalf("authorize returned %v with %d rules, want true with 6", *auth.Return, len(auth.SecurityGroupRules))
	}
	// Rules come back CIDR peers first, then group peers, per permission.
	if r := auth.SecurityGroupRules[1]; r.ReferencedGroupInfo == nil || *r.ReferencedGroupInfo.GroupId != web || *r.FromPort != 5432 {
		t.Errorf("first rule should reference %s on 5432: %+v", web, r)
	}
	if r := auth.SecurityGroupRules[4]; *r.IpProtocol != "tcp" {
		t.Errorf("protocol 6 should be normalised to tcp, got %s", *r.IpProtocol)
	}

	g, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{db}})
	if err != nil {
		t.Fatal(err)
	}
	perms := g.SecurityGroups[0].IpPermissions
	if len(perms) != 5 || len(perms[0].UserIdGroupPairs) != 1 || len(perms[0].IpRanges) != 1 {
		t.Fatalf("want 5 permissions with 5432 grouping a group and a CIDR: %+v", perms)
	}

	// Revoke by content, then the same again.
	rev, err := c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &db, IpPermissions: []types.IpPermission{tcp(5432, web)}})
	if err != nil || !*rev.Return {
		t.Fatalf("revoke: %v", err)
	}
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &db, IpPermissions: []types.IpPermission{tcp(5432, web)}})
	vpctest.ExpectCode(t, err, "InvalidPermission.NotFound")
	// Revoke by rule id.
	_, err = c.RevokeSecurityGroupIngress(ctx, &ec2.RevokeSecurityGroupIngressInput{GroupId: &db, SecurityGroupRuleIds: []string{*auth.SecurityGroupRules[5].SecurityGroupRuleId}})
	if err != nil {
		t.Fatal(err)
	}
	rules, _ = c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{Filters: []types.Filter{filter("group-id", db)}})
	if len(rules.SecurityGroupRules) != 5 {
		t.Errorf("after two revokes want 5 rules (4 ingress + egress), got %d", len(rules.SecurityGroupRules))
	}
	one, err := c.DescribeSecurityGroupRules(ctx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{*auth.SecurityGroupRules[0].SecurityGroupRuleId}})
	if err != nil || len(one.SecurityGroupRules) != 1 {
		t.Errorf("describe by rule id: %v %v", one, err)
	}
}

func TestSecurityGroupRuleValidation(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	sg := env.NewGroup(t, *vpc.VpcId, "app")
	other := env.NewVPC(t, "10.1.0.0/16")
	foreign := env.NewGroup(t, *other.VpcId, "foreign")

	tests := map[string]struct {
		perm types.IpPermission
		code string
	}{
		"unknown protocol":   {types.IpPermission{IpProtocol: aws.String("bogus"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}, "InvalidParameterValue"},
		"tcp without ports":  {types.IpPermission{IpProtocol: aws.String("tcp"), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}, "InvalidParameterValue"},
		"inverted ports":     {types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(90), ToPort: aws.Int32(80), IpRanges: []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}, "InvalidParameterValue"},
		"bad cidr":           {tcp(80, "10.0.0.300/8"), "InvalidParameterValue"},
		"unknown group":      {tcp(80, "sg-0123456789abcdef0"), "InvalidGroup.NotFound"},
		"group in other vpc": {tcp(80, foreign), "InvalidGroup.NotFound"},
		"no peers":           {types.IpPermission{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(80), ToPort: aws.Int32(80)}, "MissingParameter"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: []types.IpPermission{tc.perm}})
			vpctest.ExpectCode(t, err, tc.code)
		})
	}
	// The legacy top-level form awscli's --protocol/--port/--cidr map to.
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg,
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), CidrIp: aws.String("10.0.0.0/8")}); err != nil {
		t.Fatalf("legacy authorize: %v", err)
	}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, SourceSecurityGroupName: aws.String("app")}); err != nil {
		t.Fatalf("legacy source group authorize: %v", err)
	}
	g, _ := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg}})
	if n := len(g.SecurityGroups[0].IpPermissions); n != 2 {
		t.Errorf("legacy authorizations produced %d permissions, want 2", n)
	}
}

func TestSecurityGroupLifecycleErrors(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	used := env.NewGroup(t, *vpc.VpcId, "used")
	referenced := env.NewGroup(t, *vpc.VpcId, "referenced")
	referrer := env.NewGroup(t, *vpc.VpcId, "referrer")
	if _, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet.SubnetId, Groups: []string{used}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &referrer, IpPermissions: []types.IpPermission{tcp(80, referenced)}}); err != nil {
		t.Fatal(err)
	}
	sgs, _ := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("group-name", "default")}})
	def := *sgs.SecurityGroups[0].GroupId

	create := func(name string) error {
		_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: vpc.VpcId, GroupName: aws.String(name), Description: aws.String("d")})
		return err
	}
	del := func(id string) error {
		_, err := c.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
		return err
	}
	vpctest.ExpectCode(t, create("used"), "InvalidGroup.Duplicate")
	vpctest.ExpectCode(t, create("default"), "InvalidGroup.Reserved")
	vpctest.ExpectCode(t, create("sg-name"), "InvalidParameterValue")
	_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("x"), Description: aws.String("d")})
	vpctest.ExpectCode(t, err, "VPCIdNotSpecified")
	vpctest.ExpectCode(t, del("sg-nothex"), "InvalidGroupId.Malformed")
	vpctest.ExpectCode(t, del("sg-0123456789abcdef0"), "InvalidGroup.NotFound")
	vpctest.ExpectCode(t, del(used), "DependencyViolation")
	vpctest.ExpectCode(t, del(referenced), "DependencyViolation")
	vpctest.ExpectCode(t, del(def), "CannotDelete")
	if err := del(referrer); err != nil {
		t.Fatal(err)
	}
	if err := del(referenced); err != nil {
		t.Fatalf("deleting a group no longer referenced: %v", err)
	}
	_, err = c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupNames: []string{"referenced"}})
	vpctest.ExpectCode(t, err, "InvalidGroup.NotFound")
}

func TestSecurityGroupQuotas(t *testing.T) {
	limits := state.DefaultLimits()
	limits.RulesPerSecurityGroup = 3
	env := vpctest.Start(t, vpctest.Options{Limits: limits})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	sg := env.NewGroup(t, *vpc.VpcId, "small")
	_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: []types.IpPermission{tcp(1, "10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16")}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &sg, IpPermissions: []types.IpPermission{tcp(2, "10.0.0.0/8")}})
	vpctest.ExpectCode(t, err, "RulesPerSecurityGroupLimitExceeded")
	// Egress counts separately: the default egress rule plus two more fit.
	_, err = c.AuthorizeSecurityGroupEgress(ctx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: &sg, IpPermissions: []types.IpPermission{tcp(3, "10.0.0.0/8", "10.1.0.0/16")}})
	if err != nil {
		t.Fatalf("egress within quota: %v", err)
	}
}

func TestDescribeSecurityGroupsFiltersAndPages(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	for i := range 11 {
		_, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: vpc.VpcId, GroupName: aws.String(fmt.Sprintf("g%02d", i)), Description: aws.String("d"),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeSecurityGroup, Tags: []types.Tag{{Key: aws.String("parity"), Value: aws.String(fmt.Sprint(i % 2))}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(in *ec2.DescribeSecurityGroupsInput) int {
		t.Helper()
		n := 0
		for p := ec2.NewDescribeSecurityGroupsPaginator(c, in); p.HasMorePages(); {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(out.SecurityGroups)
		}
		return n
	}
	tests := map[string]struct {
		in   *ec2.DescribeSecurityGroupsInput
		want int
	}{
		"all paged":   {&ec2.DescribeSecurityGroupsInput{MaxResults: aws.Int32(5)}, 12},
		"by name":     {&ec2.DescribeSecurityGroupsInput{GroupNames: []string{"g01", "g02"}}, 2},
		"name filter": {&ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("group-name", "g0*")}}, 10},
		"vpc filter":  {&ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", *vpc.VpcId)}, MaxResults: aws.Int32(5)}, 12},
		"tag":         {&ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("tag:parity", "1")}}, 5},
		"tag-key":     {&ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("tag-key", "parity")}}, 11},
		"and":         {&ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("tag:parity", "0"), filter("group-name", "g1*")}}, 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := count(tc.in); got != tc.want {
				t.Errorf("got %d groups, want %d", got, tc.want)
			}
		})
	}
}
