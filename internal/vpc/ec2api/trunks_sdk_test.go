package ec2api_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func TestTrunkAssociations(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	node := env.NewNode(t, "m5.large") // 9 branches
	associate := func(branch string, vlan int32, token string) (*ec2.AssociateTrunkInterfaceOutput, error) {
		in := &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: &branch, TrunkInterfaceId: &node.Trunk, VlanId: aws.Int32(vlan)}
		if token != "" {
			in.ClientToken = &token
		}
		return c.AssociateTrunkInterface(ctx, in)
	}
	var branches, assocs []string
	for vlan := int32(1); vlan <= 9; vlan++ {
		typ := types.NetworkInterfaceCreationType("")
		if vlan%2 == 0 {
			typ = "branch"
		}
		b := *env.NewENI(t, node.Subnet, typ).NetworkInterfaceId
		out, err := associate(b, vlan, "")
		if err != nil {
			t.Fatalf("associating branch %d: %v", vlan, err)
		}
		a := out.InterfaceAssociation
		if !idPattern.MatchString(*a.AssociationId) || a.InterfaceProtocol != types.InterfaceProtocolTypeVlan || *a.VlanId != vlan {
			t.Fatalf("unexpected association %+v", a)
		}
		branches, assocs = append(branches, b), append(assocs, *a.AssociationId)
	}
	extra := *env.NewENI(t, node.Subnet, "").NetworkInterfaceId
	_, err := associate(extra, 100, "")
	vpctest.ExpectCode(t, err, "TrunkInterfaceAssociationLimitExceeded")

	got, _ := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: branches[:1]})
	if got.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusInUse {
		t.Errorf("associated branch status %s, want in-use", got.NetworkInterfaces[0].Status)
	}
	_, err = c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: &branches[0]})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterface.InUse")

	// Free one slot and check the per-trunk rules.
	if _, err := c.DisassociateTrunkInterface(ctx, &ec2.DisassociateTrunkInterfaceInput{AssociationId: &assocs[8], ClientToken: aws.String("d1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisassociateTrunkInterface(ctx, &ec2.DisassociateTrunkInterfaceInput{AssociationId: &assocs[8], ClientToken: aws.String("d1")}); err != nil {
		t.Fatalf("replayed disassociate should succeed: %v", err)
	}
	_, err = c.DisassociateTrunkInterface(ctx, &ec2.DisassociateTrunkInterfaceInput{AssociationId: &assocs[8]})
	vpctest.ExpectCode(t, err, "InvalidAssociationID.NotFound")
	attached := env.NewInstance(t, node.Subnet, "m5.large").NetworkInterfaces[0].NetworkInterfaceId
	errs := map[string]struct {
		branch string
		vlan   int32
		code   string
	}{
		"vlan in use":      {extra, 1, "InvalidParameterValue"},
		"vlan zero":        {extra, 0, "InvalidParameterValue"},
		"vlan too big":     {extra, 4095, "InvalidParameterValue"},
		"already a branch": {branches[0], 50, "InvalidNetworkInterface.InUse"},
		"attached eni":     {*attached, 50, "InvalidNetworkInterface.InUse"},
		"trunk as branch":  {node.Trunk, 50, "InvalidParameterValue"},
		"unknown branch":   {"eni-0123456789abcdef0", 50, "InvalidNetworkInterfaceID.NotFound"},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			_, err := associate(tc.branch, tc.vlan, "")
			vpctest.ExpectCode(t, err, tc.code)
		})
	}
	_, err = c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: &extra, TrunkInterfaceId: &node.Trunk, GreKey: aws.Int32(5)})
	vpctest.ExpectCode(t, err, "UnsupportedOperation")
	_, err = c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: &extra, TrunkInterfaceId: attached, VlanId: aws.Int32(7)})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")

	first, err := associate(extra, 42, "tok")
	if err != nil {
		t.Fatal(err)
	}
	again, err := associate(extra, 42, "tok")
	if err != nil || *again.InterfaceAssociation.AssociationId != *first.InterfaceAssociation.AssociationId {
		t.Fatalf("client token replay: %v", err)
	}
	_, err = associate(extra, 43, "tok")
	vpctest.ExpectCode(t, err, "IdempotentParameterMismatch")

	filters := map[string]struct {
		in   *ec2.DescribeTrunkInterfaceAssociationsInput
		want int
	}{
		"trunk":  {&ec2.DescribeTrunkInterfaceAssociationsInput{Filters: []types.Filter{filter("trunk-interface-association.trunk-interface-id", node.Trunk)}}, 9},
		"branch": {&ec2.DescribeTrunkInterfaceAssociationsInput{Filters: []types.Filter{filter("trunk-interface-association.branch-interface-id", branches[3])}}, 1},
		"id":     {&ec2.DescribeTrunkInterfaceAssociationsInput{Filters: []types.Filter{filter("trunk-interface-association.id", assocs[0])}}, 1},
		"ids":    {&ec2.DescribeTrunkInterfaceAssociationsInput{AssociationIds: assocs[:3]}, 3},
		"paged":  {&ec2.DescribeTrunkInterfaceAssociationsInput{MaxResults: aws.Int32(5)}, 9},
	}
	for name, tc := range filters {
		t.Run(name, func(t *testing.T) {
			n := 0
			for p := ec2.NewDescribeTrunkInterfaceAssociationsPaginator(c, tc.in); p.HasMorePages(); {
				out, err := p.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n += len(out.InterfaceAssociations)
			}
			if n != tc.want {
				t.Errorf("got %d associations, want %d", n, tc.want)
			}
		})
	}
	_, err = c.DescribeTrunkInterfaceAssociations(ctx, &ec2.DescribeTrunkInterfaceAssociationsInput{AssociationIds: []string{"trunk-assoc-0123456789abcdef0"}})
	vpctest.ExpectCode(t, err, "InvalidAssociationID.NotFound")
}

func TestTrunkRequiresTrunkingInstance(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24")
	inst := env.NewInstance(t, *subnet.SubnetId, "t3.large")
	trunk := env.NewENI(t, *subnet.SubnetId, types.NetworkInterfaceCreationTypeTrunk)
	_, err := c.AttachNetworkInterface(ctx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: trunk.NetworkInterfaceId, InstanceId: inst.InstanceId, DeviceIndex: aws.Int32(1)})
	vpctest.ExpectCode(t, err, "UnsupportedOperation")
	branch := env.NewENI(t, *subnet.SubnetId, "")
	_, err = c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: branch.NetworkInterfaceId, TrunkInterfaceId: trunk.NetworkInterfaceId, VlanId: aws.Int32(1)})
	vpctest.ExpectCode(t, err, "IncorrectState")
}

func TestTerminateDeletesTrunkWithAssociations(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	node := env.NewNode(t, "c5.xlarge")
	// Make the trunk go away with the instance.
	out, _ := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{node.Trunk}})
	_, err := c.ModifyNetworkInterfaceAttribute(ctx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: &node.Trunk,
		Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: out.NetworkInterfaces[0].Attachment.AttachmentId, DeleteOnTermination: aws.Bool(true)}})
	if err != nil {
		t.Fatal(err)
	}
	branch := *env.NewENI(t, node.Subnet, "branch").NetworkInterfaceId
	if _, err := c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: &branch, TrunkInterfaceId: &node.Trunk, VlanId: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{node.Instance}}); err != nil {
		t.Fatal(err)
	}
	left, _ := c.DescribeTrunkInterfaceAssociations(ctx, &ec2.DescribeTrunkInterfaceAssociationsInput{})
	if len(left.InterfaceAssociations) != 0 {
		t.Errorf("associations outlived their trunk: %+v", left.InterfaceAssociations)
	}
	if _, err := c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: &branch}); err != nil {
		t.Errorf("branch should be free after its trunk went away: %v", err)
	}
}
