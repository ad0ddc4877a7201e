package vpctest

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Permission is one rule's IpPermission; peer is a CIDR or a group id (sg-…).
func Permission(proto string, from, to int32, peer string) types.IpPermission {
	p := types.IpPermission{IpProtocol: aws.String(proto), FromPort: aws.Int32(from), ToPort: aws.Int32(to)}
	if strings.HasPrefix(peer, "sg-") {
		p.UserIdGroupPairs = []types.UserIdGroupPair{{GroupId: aws.String(peer)}}
	} else {
		p.IpRanges = []types.IpRange{{CidrIp: aws.String(peer)}}
	}
	return p
}

// Ingress authorizes one ingress rule on group through c, failing the test on error.
func Ingress(t testing.TB, c *ec2.Client, group, proto string, from, to int32, peer string) {
	t.Helper()
	if _, err := c.AuthorizeSecurityGroupIngress(context.Background(), &ec2.AuthorizeSecurityGroupIngressInput{
		GroupId: aws.String(group), IpPermissions: []types.IpPermission{Permission(proto, from, to, peer)},
	}); err != nil {
		t.Fatalf("AuthorizeSecurityGroupIngress: %v", err)
	}
}

// Egress authorizes one egress rule on group through c, failing the test on error.
func Egress(t testing.TB, c *ec2.Client, group, proto string, from, to int32, peer string) {
	t.Helper()
	if _, err := c.AuthorizeSecurityGroupEgress(context.Background(), &ec2.AuthorizeSecurityGroupEgressInput{
		GroupId: aws.String(group), IpPermissions: []types.IpPermission{Permission(proto, from, to, peer)},
	}); err != nil {
		t.Fatalf("AuthorizeSecurityGroupEgress: %v", err)
	}
}
