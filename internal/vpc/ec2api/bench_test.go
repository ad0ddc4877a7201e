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

// BenchmarkDescribeNetworkInterfaces10k pages through 10,000 ENIs (1,000
// per request, the SDK paginator) with the real SDK over HTTP; one op is a
// full scan.
func BenchmarkDescribeNetworkInterfaces10k(b *testing.B) {
	env := vpctest.Start(b, vpctest.Options{Persist: true})
	vpc := env.NewVPC(b, "10.0.0.0/16")
	subnet := env.NewSubnet(b, *vpc.VpcId, "10.0.0.0/16")
	// Seed the state in one transaction; the API path is what is measured.
	err := env.Store.Update(b.Context(), false, func(tx *state.Tx) error {
		for i := range 10000 {
			if _, err := tx.CreateNetworkInterface(state.CreateENIInput{SubnetID: *subnet.SubnetId, Description: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	requests := 0
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for p := ec2.NewDescribeNetworkInterfacesPaginator(env.Client, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(1000)}); p.HasMorePages(); {
			out, err := p.NextPage(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			n += len(out.NetworkInterfaces)
			requests++
		}
		if n != 10000 {
			b.Fatalf("scanned %d ENIs", n)
		}
	}
	b.ReportMetric(float64(requests)/b.Elapsed().Seconds(), "requests/s")
	b.ReportMetric(float64(requests*1000)/b.Elapsed().Seconds(), "enis/s")
}

// BenchmarkCreateAndAssociateBranch measures the pod-attach hot path: a
// CreateNetworkInterface plus an AssociateTrunkInterface, both persisted.
func BenchmarkCreateAndAssociateBranch(b *testing.B) {
	env := vpctest.Start(b, vpctest.Options{Persist: true})
	c, ctx := env.Client, b.Context()
	vpc := env.NewVPC(b, "10.0.0.0/16")
	subnet := *env.NewSubnet(b, *vpc.VpcId, "10.0.0.0/16").SubnetId
	trunk, vlan := "", int32(0)
	pairs := 0
	for b.Loop() {
		if trunk == "" || vlan == 107 { // m5.24xlarge's branch limit
			b.StopTimer()
			inst := env.NewInstance(b, subnet, "m5.24xlarge")
			trunk = *env.NewENI(b, subnet, types.NetworkInterfaceCreationTypeTrunk).NetworkInterfaceId
			env.Attach(b, trunk, *inst.InstanceId, 1)
			vlan = 0
			b.StartTimer()
		}
		vlan++
		eni, err := c.CreateNetworkInterface(ctx, &ec2.CreateNetworkInterfaceInput{SubnetId: &subnet, InterfaceType: "branch"})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{
			BranchInterfaceId: eni.NetworkInterface.NetworkInterfaceId, TrunkInterfaceId: &trunk, VlanId: aws.Int32(vlan),
		}); err != nil {
			b.Fatal(err)
		}
		pairs++
	}
	b.ReportMetric(float64(pairs)/b.Elapsed().Seconds(), "pairs/s")
	b.ReportMetric(float64(2*pairs)/b.Elapsed().Seconds(), "requests/s")
}
