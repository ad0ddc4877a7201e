package ec2_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestDescribeSecurityGroupRules reads every kind of rule back through the SDK, over more
// pages than one (PageSize is 5), and only the rules of the groups asked for.
func TestDescribeSecurityGroupRules(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	ctx := t.Context()
	vpc := *env.NewVPC(t, "10.3.0.0/16").VpcId
	a, b := env.NewGroup(t, vpc, "a"), env.NewGroup(t, vpc, "b")
	authorize := func(group string, egress bool, p types.IpPermission) {
		t.Helper()
		var err error
		if egress {
			_, err = env.Client.AuthorizeSecurityGroupEgress(ctx, &awsec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(group), IpPermissions: []types.IpPermission{p}})
		} else {
			_, err = env.Client.AuthorizeSecurityGroupIngress(ctx, &awsec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(group), IpPermissions: []types.IpPermission{p}})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	ports := func(proto string, from, to int32) types.IpPermission {
		return types.IpPermission{IpProtocol: aws.String(proto), FromPort: aws.Int32(from), ToPort: aws.Int32(to)}
	}
	withGroup := func(p types.IpPermission, g string) types.IpPermission {
		p.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(g)}}
		return p
	}
	withCIDR := func(p types.IpPermission, c string) types.IpPermission {
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(c), Description: aws.String("cidr " + c)}}
		return p
	}
	authorize(b, false, withGroup(ports("tcp", 8000, 8010), a))
	authorize(b, false, withGroup(ports("icmp", 8, -1), a))
	authorize(b, false, withCIDR(types.IpPermission{IpProtocol: aws.String("-1")}, "10.3.1.0/24"))
	for i := range 4 {
		authorize(b, false, withCIDR(ports("udp", 53, 53), fmt.Sprintf("10.3.%d.0/24", 10+i)))
	}
	authorize(b, true, withCIDR(ports("tcp", 443, 443), "0.0.0.0/0"))
	authorize(a, false, withCIDR(ports("tcp", 22, 22), "10.3.0.0/16")) // never returned below

	c := newClient(t, env, nil)
	rules, err := c.DescribeSecurityGroupRules(ctx, []string{b})
	if err != nil {
		t.Fatal(err)
	}
	// b: its default egress rule, 7 ingress rules, 1 more egress rule: two pages of 5.
	if len(rules) != 9 {
		t.Fatalf("got %d rules, want 9: %+v", len(rules), rules)
	}
	find := func(what string, match func(cloud.SecurityGroupRule) bool) cloud.SecurityGroupRule {
		t.Helper()
		i := slices.IndexFunc(rules, match)
		if i < 0 {
			t.Fatalf("no %s rule in %+v", what, rules)
		}
		return rules[i]
	}
	for _, r := range rules {
		if r.GroupID != b || len(r.ID) < 5 || r.ID[:4] != "sgr-" {
			t.Errorf("rule %+v: want an sgr- id in group %s", r, b)
		}
	}
	tests := map[string]struct {
		match func(cloud.SecurityGroupRule) bool
		want  cloud.SecurityGroupRule
	}{
		"group reference": {
			func(r cloud.SecurityGroupRule) bool { return r.Protocol == "tcp" && !r.Egress },
			cloud.SecurityGroupRule{Protocol: "tcp", FromPort: 8000, ToPort: 8010, ReferencedGroupID: a},
		},
		"icmp type, any code": {
			func(r cloud.SecurityGroupRule) bool { return r.Protocol == "icmp" },
			cloud.SecurityGroupRule{Protocol: "icmp", FromPort: 8, ToPort: -1, ReferencedGroupID: a},
		},
		"all traffic from a cidr": {
			func(r cloud.SecurityGroupRule) bool { return r.Protocol == "-1" && !r.Egress },
			cloud.SecurityGroupRule{Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "10.3.1.0/24", Description: "cidr 10.3.1.0/24"},
		},
		"default egress": {
			func(r cloud.SecurityGroupRule) bool { return r.Protocol == "-1" && r.Egress },
			cloud.SecurityGroupRule{Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"},
		},
		"egress port": {
			func(r cloud.SecurityGroupRule) bool { return r.Protocol == "tcp" && r.Egress },
			cloud.SecurityGroupRule{Egress: true, Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0", Description: "cidr 0.0.0.0/0"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := find(name, tc.match)
			got.ID, got.GroupID = "", ""
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	both, err := c.DescribeSecurityGroupRules(ctx, []string{a, b})
	if err != nil || len(both) != 11 {
		t.Fatalf("rules of a and b: %d, %v; want 11", len(both), err)
	}
	if none, err := c.DescribeSecurityGroupRules(ctx, nil); err != nil || len(none) != 0 {
		t.Fatalf("rules of no group = %+v, %v; want none, not the whole account", none, err)
	}
}

// TestNetworkInterfacesByAddress finds an ENI by its primary and by a secondary address, the
// way a regular pod's IP is found on its node's ENI.
func TestNetworkInterfacesByAddress(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	ctx := t.Context()
	vpc := *env.NewVPC(t, "10.4.0.0/16").VpcId
	subnet := *env.NewSubnet(t, vpc, "10.4.0.0/24").SubnetId
	c := newClient(t, env, nil)
	var enis []cloud.NetworkInterface
	for range 7 { // more than a page, so that a match on a later page is found
		e, err := c.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: subnet, SecondaryIPCount: 2})
		if err != nil {
			t.Fatal(err)
		}
		enis = append(enis, e)
	}
	last := enis[len(enis)-1]
	tests := map[string]struct {
		ip   string
		want []string
	}{
		"primary":   {ip: last.PrivateIP, want: []string{last.ID}},
		"secondary": {ip: last.SecondaryIPs[1], want: []string{last.ID}},
		"nobody's":  {ip: "10.4.0.250", want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := c.NetworkInterfacesByAddress(ctx, tc.ip)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, e := range got {
				ids = append(ids, e.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Fatalf("ENIs with %s = %v, want %v", tc.ip, ids, tc.want)
			}
		})
	}
}
