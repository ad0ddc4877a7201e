package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestCleanupCluster deletes one cluster's trunk and branches, in dependency order, through the
// real SDK against the local VPC, and leaves everything else alone; a second run is a no-op.
func TestCleanupCluster(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	ctx := t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := *env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/20").SubnetId
	inst := env.NewInstance(t, subnet, "m5.large")
	c := env.CloudClient(t, nil)
	create := func(typ, cluster string) cloud.NetworkInterface {
		t.Helper()
		in := cloud.CreateNetworkInterfaceInput{SubnetID: subnet, Type: typ}
		if cluster != "" {
			in.Tags = map[string]string{cloud.TagCluster: cluster}
		}
		eni, err := c.CreateNetworkInterface(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return eni
	}
	trunk := create(cloud.InterfaceTypeTrunk, "c1")
	if _, err := c.AttachNetworkInterface(ctx, trunk.ID, *inst.InstanceId, 1); err != nil {
		t.Fatal(err)
	}
	for vlan := 1; vlan <= 2; vlan++ {
		b := create(cloud.InterfaceTypeBranch, "c1")
		if _, err := c.AssociateTrunkInterface(ctx, trunk.ID, b.ID, vlan, ""); err != nil {
			t.Fatal(err)
		}
	}
	create(cloud.InterfaceTypeBranch, "c1") // a branch already disassociated (cooling down)
	other := create(cloud.InterfaceTypeBranch, "c2")
	// Another cluster's branch on c1's trunk: let go of, so that the trunk can go, and kept.
	if _, err := c.AssociateTrunkInterface(ctx, trunk.ID, other.ID, 3, ""); err != nil {
		t.Fatal(err)
	}
	untagged := create("", "")

	var out bytes.Buffer
	if err := cleanupCluster(ctx, c, "c1", &out, 10*time.Second); err != nil {
		t.Fatalf("cleanup: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "deleted "); n != 4 {
		t.Errorf("reported %d deletions, want 4 (trunk, two branches, the cooling branch):\n%s", n, out.String())
	}
	left, err := c.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagCluster: "c1"}})
	if err != nil || len(left) != 0 {
		t.Fatalf("c1's ENIs left: %+v (%v)", left, err)
	}
	for _, id := range []string{other.ID, untagged.ID, *inst.NetworkInterfaces[0].NetworkInterfaceId} {
		if _, err := c.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{id}}); err != nil {
			t.Errorf("%s is not c1's but is gone: %v", id, err)
		}
	}
	out.Reset()
	if err := cleanupCluster(ctx, c, "c1", &out, 10*time.Second); err != nil || out.Len() != 0 {
		t.Fatalf("second cleanup = %v, %q; want a no-op", err, out.String())
	}
}
