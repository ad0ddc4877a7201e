package ec2api_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestNetworkInterfacePermissions runs what AWS's vpc-resource-controller does with a trunk
// (create, grant INSTANCE-ATTACH to its own account, attach) and a branch (create, grant,
// associate), then lists, pages, filters and deletes permissions as EC2 documents.
func TestNetworkInterfacePermissions(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	node := env.NewNode(t, "m5.large")
	grant := func(eni, account string, perm types.InterfacePermissionType) (*types.NetworkInterfacePermission, error) {
		out, err := c.CreateNetworkInterfacePermission(ctx, &ec2.CreateNetworkInterfacePermissionInput{
			NetworkInterfaceId: &eni, AwsAccountId: aws.String(account), Permission: perm})
		if err != nil {
			return nil, err
		}
		return out.InterfacePermission, nil
	}
	trunkPerm, err := grant(node.Trunk, state.AccountID, types.InterfacePermissionTypeInstanceAttach)
	if err != nil {
		t.Fatalf("granting on the trunk: %v", err)
	}
	if !idPattern.MatchString(aws.ToString(trunkPerm.NetworkInterfacePermissionId)) || aws.ToString(trunkPerm.NetworkInterfaceId) != node.Trunk ||
		aws.ToString(trunkPerm.AwsAccountId) != state.AccountID || trunkPerm.Permission != types.InterfacePermissionTypeInstanceAttach ||
		trunkPerm.PermissionState == nil || trunkPerm.PermissionState.State != types.NetworkInterfacePermissionStateCodeGranted {
		t.Fatalf("unexpected permission %+v (state %+v)", trunkPerm, trunkPerm.PermissionState)
	}
	again, err := grant(node.Trunk, state.AccountID, types.InterfacePermissionTypeInstanceAttach)
	if err != nil || aws.ToString(again.NetworkInterfacePermissionId) != aws.ToString(trunkPerm.NetworkInterfacePermissionId) {
		t.Fatalf("granting the same again: %v, %+v; want the existing permission", err, again)
	}
	_, err = grant(node.Trunk, "210987654321", types.InterfacePermissionTypeInstanceAttach)
	vpctest.ExpectCode(t, err, "InvalidPermission.Duplicate")

	var branches []string
	for vlan := int32(1); vlan <= 6; vlan++ {
		b := *env.NewENI(t, node.Subnet, types.NetworkInterfaceCreationTypeBranch).NetworkInterfaceId
		if _, err := grant(b, state.AccountID, types.InterfacePermissionTypeInstanceAttach); err != nil {
			t.Fatalf("granting on branch %d: %v", vlan, err)
		}
		if _, err := c.AssociateTrunkInterface(ctx, &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: &b, TrunkInterfaceId: &node.Trunk, VlanId: aws.Int32(vlan)}); err != nil {
			t.Fatal(err)
		}
		branches = append(branches, b)
	}

	list := func(t *testing.T, in *ec2.DescribeNetworkInterfacePermissionsInput) []types.NetworkInterfacePermission {
		t.Helper()
		var all []types.NetworkInterfacePermission
		for p := ec2.NewDescribeNetworkInterfacePermissionsPaginator(c, in); p.HasMorePages(); {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, out.NetworkInterfacePermissions...)
		}
		return all
	}
	filter := func(name string, values ...string) []types.Filter {
		return []types.Filter{{Name: aws.String(name), Values: values}}
	}
	cases := map[string]struct {
		in   *ec2.DescribeNetworkInterfacePermissionsInput
		want int
	}{
		"all":         {&ec2.DescribeNetworkInterfacePermissionsInput{}, 7},
		"pages of 5":  {&ec2.DescribeNetworkInterfacePermissionsInput{MaxResults: aws.Int32(5)}, 7},
		"by eni":      {&ec2.DescribeNetworkInterfacePermissionsInput{Filters: filter("network-interface-permission.network-interface-id", branches[2], node.Trunk)}, 2},
		"by account":  {&ec2.DescribeNetworkInterfacePermissionsInput{Filters: filter("network-interface-permission.aws-account-id", state.AccountID)}, 7},
		"by type":     {&ec2.DescribeNetworkInterfacePermissionsInput{Filters: filter("network-interface-permission.permission", "EIP-ASSOCIATE")}, 0},
		"by id":       {&ec2.DescribeNetworkInterfacePermissionsInput{NetworkInterfacePermissionIds: []string{*trunkPerm.NetworkInterfacePermissionId}}, 1},
		"by id again": {&ec2.DescribeNetworkInterfacePermissionsInput{Filters: filter("network-interface-permission.network-interface-permission-id", *trunkPerm.NetworkInterfacePermissionId)}, 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := list(t, tc.in); len(got) != tc.want {
				t.Errorf("got %d permissions, want %d: %+v", len(got), tc.want, got)
			}
		})
	}
	first, err := c.DescribeNetworkInterfacePermissions(ctx, &ec2.DescribeNetworkInterfacePermissionsInput{MaxResults: aws.Int32(5)})
	if err != nil || len(first.NetworkInterfacePermissions) != 5 || first.NextToken == nil {
		t.Fatalf("first page of 5: %v, %d items, token %v", err, len(first.NetworkInterfacePermissions), first.NextToken)
	}

	// The trunk is attached and the branch associated: their account uses them, so only Force deletes.
	_, err = c.DeleteNetworkInterfacePermission(ctx, &ec2.DeleteNetworkInterfacePermissionInput{NetworkInterfacePermissionId: trunkPerm.NetworkInterfacePermissionId})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterface.InUse")
	if _, err := c.DeleteNetworkInterfacePermission(ctx, &ec2.DeleteNetworkInterfacePermissionInput{
		NetworkInterfacePermissionId: trunkPerm.NetworkInterfacePermissionId, Force: aws.Bool(true)}); err != nil {
		t.Fatalf("forced delete: %v", err)
	}
	_, err = c.DeleteNetworkInterfacePermission(ctx, &ec2.DeleteNetworkInterfacePermissionInput{NetworkInterfacePermissionId: trunkPerm.NetworkInterfacePermissionId})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterfacePermissionID.NotFound")

	// Deleting a branch (after its disassociation) deletes its permission with it.
	assoc, err := c.DescribeTrunkInterfaceAssociations(ctx, &ec2.DescribeTrunkInterfaceAssociationsInput{
		Filters: filter("trunk-interface-association.branch-interface-id", branches[0])})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DisassociateTrunkInterface(ctx, &ec2.DisassociateTrunkInterfaceInput{AssociationId: assoc.InterfaceAssociations[0].AssociationId}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteNetworkInterface(ctx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: &branches[0]}); err != nil {
		t.Fatal(err)
	}
	if got := list(t, &ec2.DescribeNetworkInterfacePermissionsInput{Filters: filter("network-interface-permission.network-interface-id", branches[0])}); len(got) != 0 {
		t.Errorf("a deleted ENI's permissions remain: %+v", got)
	}
	if got := list(t, &ec2.DescribeNetworkInterfacePermissionsInput{}); len(got) != 5 {
		t.Errorf("%d permissions left, want 5", len(got))
	}
}

func TestNetworkInterfacePermissionErrors(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	node := env.NewNode(t, "m5.large")
	errs := map[string]struct {
		in   ec2.CreateNetworkInterfacePermissionInput
		code string
	}{
		"no account":        {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: &node.Trunk, Permission: "INSTANCE-ATTACH"}, "MissingParameter"},
		"bad permission":    {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: &node.Trunk, AwsAccountId: aws.String(state.AccountID), Permission: "ATTACH"}, "InvalidParameterValue"},
		"bad account":       {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: &node.Trunk, AwsAccountId: aws.String("12345"), Permission: "INSTANCE-ATTACH"}, "InvalidParameterValue"},
		"service":           {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: &node.Trunk, AwsService: aws.String("eks.amazonaws.com"), Permission: "INSTANCE-ATTACH"}, "UnsupportedOperation"},
		"account & service": {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: &node.Trunk, AwsAccountId: aws.String(state.AccountID), AwsService: aws.String("x"), Permission: "INSTANCE-ATTACH"}, "InvalidParameterCombination"},
		"unknown eni":       {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: aws.String("eni-0123456789abcdef0"), AwsAccountId: aws.String(state.AccountID), Permission: "INSTANCE-ATTACH"}, "InvalidNetworkInterfaceID.NotFound"},
		"malformed eni":     {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: aws.String("eni-zz"), AwsAccountId: aws.String(state.AccountID), Permission: "INSTANCE-ATTACH"}, "InvalidNetworkInterfaceID.Malformed"},
		"dry run":           {ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: &node.Trunk, AwsAccountId: aws.String(state.AccountID), Permission: "INSTANCE-ATTACH", DryRun: aws.Bool(true)}, "DryRunOperation"},
	}
	for name, tc := range errs {
		t.Run(name, func(t *testing.T) {
			_, err := c.CreateNetworkInterfacePermission(ctx, &tc.in)
			vpctest.ExpectCode(t, err, tc.code)
		})
	}
	// The SDK checks these two itself; awscli and other clients may send them.
	for _, params := range []map[string]string{
		{"NetworkInterfaceId": node.Trunk, "AwsAccountId": state.AccountID},
		{"AwsAccountId": state.AccountID, "Permission": "INSTANCE-ATTACH"},
	} {
		if status, body := call(t, env, "CreateNetworkInterfacePermission", params); status != 400 || !strings.Contains(body, "<Code>MissingParameter</Code>") {
			t.Errorf("CreateNetworkInterfacePermission %v: %d %s, want MissingParameter", params, status, body)
		}
	}
	// Nothing was granted by any of them, the dry run included.
	out, err := c.DescribeNetworkInterfacePermissions(ctx, &ec2.DescribeNetworkInterfacePermissionsInput{})
	if err != nil || len(out.NetworkInterfacePermissions) != 0 {
		t.Fatalf("after refused grants: %v, %+v", err, out.NetworkInterfacePermissions)
	}
	_, err = c.DescribeNetworkInterfacePermissions(ctx, &ec2.DescribeNetworkInterfacePermissionsInput{MaxResults: aws.Int32(256)})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeNetworkInterfacePermissions(ctx, &ec2.DescribeNetworkInterfacePermissionsInput{Filters: []types.Filter{{Name: aws.String("tag:x"), Values: []string{"y"}}}})
	vpctest.ExpectCode(t, err, "InvalidParameterValue")
	_, err = c.DeleteNetworkInterfacePermission(ctx, &ec2.DeleteNetworkInterfacePermissionInput{NetworkInterfacePermissionId: aws.String("eni-perm-zz")})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterfacePermissionID.Malformed")
	_, err = c.DescribeNetworkInterfacePermissions(ctx, &ec2.DescribeNetworkInterfacePermissionsInput{NetworkInterfacePermissionIds: []string{"eni-perm-0123456789abcdef0"}})
	vpctest.ExpectCode(t, err, "InvalidNetworkInterfacePermissionID.NotFound")
}

// TestDescribeNetworkInterfacePermissionsDefaultPage: without MaxResults EC2 answers at most
// 50 and a token, which the SDK's paginator follows.
func TestDescribeNetworkInterfacePermissionsDefaultPage(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.Client, t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := *env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/24").SubnetId
	for range 51 {
		eni := env.NewENI(t, subnet, "").NetworkInterfaceId
		if _, err := c.CreateNetworkInterfacePermission(ctx, &ec2.CreateNetworkInterfacePermissionInput{
			NetworkInterfaceId: eni, AwsAccountId: aws.String(state.AccountID), Permission: "INSTANCE-ATTACH"}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.DescribeNetworkInterfacePermissions(ctx, &ec2.DescribeNetworkInterfacePermissionsInput{})
	if err != nil || len(out.NetworkInterfacePermissions) != 50 || out.NextToken == nil {
		t.Fatalf("default page: %v, %d items, token %v; want 50 and a token", err, len(out.NetworkInterfacePermissions), out.NextToken)
	}
	rest, err := c.DescribeNetworkInterfacePermissions(ctx, &ec2.DescribeNetworkInterfacePermissionsInput{NextToken: out.NextToken})
	if err != nil || len(rest.NetworkInterfacePermissions) != 1 || rest.NextToken != nil {
		t.Fatalf("second page: %v, %d items, token %v; want 1 and no token", err, len(rest.NetworkInterfacePermissions), rest.NextToken)
	}
}
