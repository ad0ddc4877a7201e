package ec2api_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// scaleENIs is the size of BenchmarkScaleDescribeNetworkInterfaces: PODSG_SCALE_ENIS,
// default 100,000 (issue 15's size; seeding takes about a minute on 2 cores).
func scaleENIs(b *testing.B) int {
	if v := os.Getenv("PODSG_SCALE_ENIS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("PODSG_SCALE_ENIS=%q: want a number of at least 100", v)
		}
		return n
	}
	return 100000
}

// BenchmarkScaleDescribeNetworkInterfaces pages (MaxResults 1000, the SDK's paginator over
// HTTP) through a fleet's ENIs: trunk nodes of 50 branches each, tagged as a controller tags
// them, PODSG_SCALE_ENIS ENIs in all. Each sub-benchmark is one filter; one op reads the whole
// filtered set, and ms/page is one page's latency.
func BenchmarkScaleDescribeNetworkInterfaces(b *testing.B) {
	const perNode = 50
	total := scaleENIs(b)
	env := vpctest.Start(b, vpctest.Options{Persist: true})
	start := time.Now()
	nodes, err := vpctest.SeedFleet(b.Context(), env.Store, vpctest.FleetSpec{
		Nodes: total / (perNode + 2), BranchesPerNode: perNode,
		TrunkTags: func(int, string) state.Tags { return state.Tags{"cluster": "scale"} },
		BranchTags: func(node int, trunk string, _ int) state.Tags {
			return state.Tags{"cluster": "scale", "trunk": trunk, "node": fmt.Sprint("node-", node)}
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	count := 0
	_ = env.Store.View(func(tx *state.Tx) error { count = len(tx.NetworkInterfaceIDs()); return nil })
	b.Logf("seeded %d ENIs on %d nodes in %s", count, len(nodes), time.Since(start).Round(time.Millisecond))
	mid := nodes[len(nodes)/2]
	filter := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	cases := []struct {
		name    string
		filters []types.Filter
	}{
		{"all", nil},
		{"interface-type=branch", []types.Filter{filter("interface-type", "branch")}},
		{"tag:cluster", []types.Filter{filter("tag:cluster", "scale")}},
		{"subnet-id", []types.Filter{filter("subnet-id", mid.Subnet)}},
		{"tag:cluster+interface-type=trunk", []types.Filter{filter("tag:cluster", "scale"), filter("interface-type", "trunk")}},
		{"attachment.instance-id", []types.Filter{filter("attachment.instance-id", mid.Instance)}},
		{"tag:trunk", []types.Filter{filter("tag:cluster", "scale"), filter("tag:trunk", mid.Trunk)}},
		{"interface-type=branch+glob", []types.Filter{filter("interface-type", "branch"), filter("tag:node", "node-1?")}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			pages, found := 0, 0
			for b.Loop() {
				found = 0
				p := ec2.NewDescribeNetworkInterfacesPaginator(env.Client, &ec2.DescribeNetworkInterfacesInput{
					Filters: tc.filters, MaxResults: aws.Int32(1000)})
				for p.HasMorePages() {
					out, err := p.NextPage(b.Context())
					if err != nil {
						b.Fatal(err)
					}
					found += len(out.NetworkInterfaces)
					pages++
				}
				if found == 0 {
					b.Fatal("the filter matched nothing")
				}
			}
			b.ReportMetric(float64(found), "enis")
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(pages), "ms/page")
		})
	}
}
