package ec2api_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestDescribeNetworkInterfacesPagesByIndex pages with MaxResults 5 through filters the state
// answers from an index (a selective tag, one that most ENIs carry, an instance, two tag
// values, an interface type alone and with a tag most ENIs carry) and one it cannot (a
// wildcard): every page in id order, each match exactly once,
// the same set as filtering everything.
func TestDescribeNetworkInterfacesPagesByIndex(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	fleet, err := vpctest.SeedFleet(t.Context(), env.Store, vpctest.FleetSpec{Nodes: 4, BranchesPerNode: 9,
		TrunkTags: func(node int, _ string) state.Tags { return state.Tags{"node": fmt.Sprint("node-", node)} },
		BranchTags: func(node int, _ string, vlan int) state.Tags {
			tags := state.Tags{"cluster": "c", "node": fmt.Sprint("node-", node)}
			if vlan%3 == 0 {
				tags["third"] = "yes"
			}
			return tags
		}})
	if err != nil {
		t.Fatal(err)
	}
	var all []types.NetworkInterface
	for p := ec2.NewDescribeNetworkInterfacesPaginator(env.Client, &ec2.DescribeNetworkInterfacesInput{}); p.HasMorePages(); {
		out, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out.NetworkInterfaces...)
	}
	filter := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	tests := map[string]struct {
		filters []types.Filter
		want    func(types.NetworkInterface) bool
	}{
		"selective tag": {[]types.Filter{filter("tag:third", "yes")}, func(e types.NetworkInterface) bool { return tagOf(e, "third") == "yes" }},
		"common tag and type": {[]types.Filter{filter("tag:cluster", "c"), filter("interface-type", "branch")},
			func(e types.NetworkInterface) bool { return tagOf(e, "cluster") == "c" && e.InterfaceType == "branch" }},
		"instance": {[]types.Filter{filter("attachment.instance-id", fleet[2].Instance)},
			func(e types.NetworkInterface) bool {
				return e.Attachment != nil && aws.ToString(e.Attachment.InstanceId) == fleet[2].Instance
			}},
		"two values": {[]types.Filter{filter("tag:node", "node-1", "node-3")},
			func(e types.NetworkInterface) bool {
				return tagOf(e, "node") == "node-1" || tagOf(e, "node") == "node-3"
			}},
		"trunks": {[]types.Filter{filter("interface-type", "trunk")},
			func(e types.NetworkInterface) bool { return e.InterfaceType == "trunk" }},
		"trunks and branches of a node": {[]types.Filter{filter("interface-type", "trunk", "branch"), filter("tag:node", "node-2")},
			func(e types.NetworkInterface) bool { return tagOf(e, "node") == "node-2" }},
		"wildcard": {[]types.Filter{filter("tag:node", "node-?"), filter("tag:third", "yes")},
			func(e types.NetworkInterface) bool { return tagOf(e, "third") == "yes" }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var got, want []string
			for p := ec2.NewDescribeNetworkInterfacesPaginator(env.Client, &ec2.DescribeNetworkInterfacesInput{
				Filters: tc.filters, MaxResults: aws.Int32(5)}); p.HasMorePages(); {
				out, err := p.NextPage(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range out.NetworkInterfaces {
					got = append(got, aws.ToString(e.NetworkInterfaceId))
				}
			}
			for _, e := range all {
				if tc.want(e) {
					want = append(want, aws.ToString(e.NetworkInterfaceId))
				}
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Fatalf("paged %d ENIs %v\nwant %d %v", len(got), got, len(want), want)
			}
		})
	}
}

func tagOf(e types.NetworkInterface, key string) string {
	for _, t := range e.TagSet {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}
