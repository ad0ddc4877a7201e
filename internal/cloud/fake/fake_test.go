package fake

import (
	"errors"
	"slices"
	"testing"

	"github.com/podsg/podsg/internal/cloud"
)

func seeded(t *testing.T) *EC2 {
	t.Helper()
	f := New()
	f.AddSubnet(cloud.Subnet{ID: "subnet-1", VPCID: "vpc-1", CIDR: "10.0.0.0/24", AvailabilityZone: "us-west-2a"})
	f.AddSecurityGroup(cloud.SecurityGroup{ID: "sg-1", VPCID: "vpc-1"})
	f.AddSecurityGroup(cloud.SecurityGroup{ID: "sg-other", VPCID: "vpc-2"})
	if err := f.AddInstance(Instance{ID: "i-1", Type: "m5.large", SubnetID: "subnet-1", SecurityGroups: []string{"sg-1"}, MaxBranches: 2}); err != nil {
		t.Fatal(err)
	}
	return f
}

func trunk(t *testing.T, f *EC2) string {
	t.Helper()
	ctx := t.Context()
	eni, err := f.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", Type: cloud.InterfaceTypeTrunk, SecurityGroups: []string{"sg-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.AttachNetworkInterface(ctx, eni.ID, "i-1", 1); err != nil {
		t.Fatal(err)
	}
	return eni.ID
}

func TestClientTokenIdempotency(t *testing.T) {
	f := seeded(t)
	in := cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", SecurityGroups: []string{"sg-1"}, ClientToken: "tok"}
	f.NextErrorAfterEffect(ActionCreateNetworkInterface, Unavailable(ActionCreateNetworkInterface))
	if _, err := f.CreateNetworkInterface(t.Context(), in); !errors.Is(err, cloud.ErrUnavailable) {
		t.Fatalf("want injected unavailable, got %v", err)
	}
	a, err := f.CreateNetworkInterface(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(f.NetworkInterfaces(cloud.InterfaceTypeInterface)); n != 2 { // primary + one
		t.Fatalf("want the retry to reuse the lost ENI, have %d interfaces", n)
	}
	in.SecurityGroups = nil
	if _, err := f.CreateNetworkInterface(t.Context(), in); !errors.Is(err, cloud.ErrInvalid) || cloud.Code(err) != "IdempotentParameterMismatch" {
		t.Fatalf("want IdempotentParameterMismatch, got %v", err)
	}
	if a.PrivateIP != "10.0.0.5" || a.MAC == "" {
		t.Fatalf("unexpected address %q mac %q", a.PrivateIP, a.MAC)
	}
}

func TestCreateValidation(t *testing.T) {
	f := seeded(t)
	tests := map[string]struct {
		in   cloud.CreateNetworkInterfaceInput
		kind error
		code string
	}{
		"missing group":   {cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", SecurityGroups: []string{"sg-nope"}}, cloud.ErrNotFound, "InvalidGroup.NotFound"},
		"other vpc group": {cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", SecurityGroups: []string{"sg-other"}}, cloud.ErrInvalid, "InvalidParameter"},
		"missing subnet":  {cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-x"}, cloud.ErrNotFound, "InvalidSubnetID.NotFound"},
		"bad type":        {cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", Type: "efa-x"}, cloud.ErrInvalid, "InvalidParameterValue"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := f.CreateNetworkInterface(t.Context(), tc.in)
			if !errors.Is(err, tc.kind) || cloud.Code(err) != tc.code {
				t.Fatalf("want %v/%s, got %v", tc.kind, tc.code, err)
			}
		})
	}
}

func TestTrunkAssociations(t *testing.T) {
	f := seeded(t)
	ctx := t.Context()
	tr := trunk(t, f)
	var branches []string
	for range 3 {
		b, err := f.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", Type: cloud.InterfaceTypeBranch, SecurityGroups: []string{"sg-1"}})
		if err != nil {
			t.Fatal(err)
		}
		branches = append(branches, b.ID)
	}
	a1, err := f.AssociateTrunkInterface(ctx, tr, branches[0], 1, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := f.AssociateTrunkInterface(ctx, tr, branches[0], 1, "t1"); err != nil || again.ID != a1.ID {
		t.Fatalf("want idempotent association, got %v %v", again, err)
	}
	if _, err := f.AssociateTrunkInterface(ctx, tr, branches[1], 1, "t2"); !errors.Is(err, cloud.ErrInvalid) {
		t.Fatalf("want duplicate VLAN rejected, got %v", err)
	}
	if _, err := f.AssociateTrunkInterface(ctx, tr, branches[1], 2, "t3"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.AssociateTrunkInterface(ctx, tr, branches[2], 3, "t4"); !errors.Is(err, cloud.ErrQuota) {
		t.Fatalf("want branch limit, got %v", err)
	}
	if err := f.DeleteNetworkInterface(ctx, branches[0]); !errors.Is(err, cloud.ErrConflict) {
		t.Fatalf("want associated branch in use, got %v", err)
	}
	if err := f.DisassociateTrunkInterface(ctx, a1.ID, "d1"); err != nil {
		t.Fatal(err)
	}
	if err := f.DisassociateTrunkInterface(ctx, a1.ID, "d1"); err != nil {
		t.Fatalf("want idempotent disassociation retry, got %v", err)
	}
	if err := f.DeleteNetworkInterface(ctx, branches[0]); err != nil {
		t.Fatal(err)
	}
}

func TestFaults(t *testing.T) {
	f := seeded(t)
	ctx := t.Context()
	f.ThrottleStorm(2)
	for range 2 {
		if _, err := f.DescribeSubnet(ctx, "subnet-1"); !errors.Is(err, cloud.ErrThrottled) {
			t.Fatalf("want throttled, got %v", err)
		}
	}
	if _, err := f.DescribeSubnet(ctx, "subnet-1"); err != nil {
		t.Fatal(err)
	}
	f.FailEvery(ActionDescribeSubnet, 2, Unavailable(ActionDescribeSubnet))
	_, err1 := f.DescribeSubnet(ctx, "subnet-1") // 4th call: even
	_, err2 := f.DescribeSubnet(ctx, "subnet-1")
	if !errors.Is(err1, cloud.ErrUnavailable) || err2 != nil {
		t.Fatalf("want every 2nd call failing, got %v, %v", err1, err2)
	}
	if got := f.Calls(ActionDescribeSubnet); got != 5 {
		t.Fatalf("want 5 recorded calls, got %d", got)
	}
	if _, err := f.DescribeSecurityGroups(ctx, []string{"sg-1", "sg-a", "sg-b"}); cloud.Code(err) != "InvalidGroup.NotFound" {
		t.Fatalf("want InvalidGroup.NotFound, got %v", err)
	}
}

func TestAttachLimits(t *testing.T) {
	f := seeded(t)
	ctx := t.Context()
	var ids []string
	for range 3 {
		e, err := f.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	if _, err := f.AttachNetworkInterface(ctx, ids[0], "i-1", 0); !errors.Is(err, cloud.ErrInvalid) {
		t.Fatalf("want device index taken, got %v", err)
	}
	for i, id := range ids[:2] {
		if _, err := f.AttachNetworkInterface(ctx, id, "i-1", i+1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.AttachNetworkInterface(ctx, ids[2], "i-1", 3); !errors.Is(err, cloud.ErrQuota) {
		t.Fatalf("want attachment limit, got %v", err)
	}
}

// TestPrivateIPs: secondary IPs come within the instance type's IPv4 addresses per ENI (an
// m5.large: 10, the primary's included) and go only when each one named is a secondary IP
// of the ENI, with EC2's error codes.
func TestPrivateIPs(t *testing.T) {
	f := seeded(t)
	ctx := t.Context()
	eni, err := f.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", SecondaryIPCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(eni.SecondaryIPs) != 2 {
		t.Fatalf("created with secondary IPs %v, want 2", eni.SecondaryIPs)
	}
	if _, err := f.AttachNetworkInterface(ctx, eni.ID, "i-1", 1); err != nil {
		t.Fatal(err)
	}
	added, err := f.AssignPrivateIPs(ctx, eni.ID, 7)
	if err != nil || len(added) != 7 {
		t.Fatalf("AssignPrivateIPs(7) = %v, %v", added, err)
	}
	if _, err := f.AssignPrivateIPs(ctx, eni.ID, 1); !errors.Is(err, cloud.ErrQuota) || cloud.Code(err) != "PrivateIpAddressLimitExceeded" {
		t.Fatalf("an 11th address on an m5.large: %v, want PrivateIpAddressLimitExceeded", err)
	}
	for name, tc := range map[string]struct {
		eni      string
		ips      []string
		wantCode string
	}{
		"unknown ENI":       {"eni-nope", added[:1], "InvalidNetworkInterfaceID.NotFound"},
		"no address":        {eni.ID, nil, "MissingParameter"},
		"primary address":   {eni.ID, []string{eni.PrivateIP}, "InvalidParameterValue"},
		"one not assigned":  {eni.ID, []string{added[0], "10.0.0.250"}, "InvalidParameterValue"},
		"another ENI's one": {eni.ID, []string{"10.0.0.4"}, "InvalidParameterValue"}, // the instance's primary address
	} {
		if err := f.UnassignPrivateIPs(ctx, tc.eni, tc.ips); cloud.Code(err) != tc.wantCode {
			t.Errorf("%s: UnassignPrivateIPs = %v, want %s", name, err, tc.wantCode)
		}
	}
	if got, _ := f.NetworkInterface(eni.ID); len(got.SecondaryIPs) != 9 {
		t.Fatalf("failed unassigns changed the ENI: %v", got.SecondaryIPs)
	}
	if err := f.UnassignPrivateIPs(ctx, eni.ID, added[:3]); err != nil {
		t.Fatal(err)
	}
	got, _ := f.NetworkInterface(eni.ID)
	if len(got.SecondaryIPs) != 6 || slices.ContainsFunc(added[:3], func(ip string) bool { return slices.Contains(got.SecondaryIPs, ip) }) {
		t.Fatalf("after unassigning %v: %v", added[:3], got.SecondaryIPs)
	}
	if _, err := f.AssignPrivateIPs(ctx, eni.ID, 3); err != nil {
		t.Fatalf("room freed by the unassign: %v", err)
	}
}

// TestModifyGroups: a branch's groups change in place, associated or not; what EC2 refuses
// changes nothing.
func TestModifyGroups(t *testing.T) {
	tests := map[string]struct {
		groups    []string
		quota     int
		wantKind  error
		wantCode  string
		wantAfter []string
	}{
		"two groups":      {groups: []string{"sg-2", "sg-1"}, wantAfter: []string{"sg-2", "sg-1"}},
		"missing group":   {groups: []string{"sg-1", "sg-nope"}, wantKind: cloud.ErrNotFound, wantCode: "InvalidGroup.NotFound", wantAfter: []string{"sg-1"}},
		"other VPC":       {groups: []string{"sg-other"}, wantKind: cloud.ErrInvalid, wantCode: "InvalidParameter", wantAfter: []string{"sg-1"}},
		"over the quota":  {groups: []string{"sg-1", "sg-2"}, quota: 1, wantKind: cloud.ErrQuota, wantCode: "SecurityGroupsPerInterfaceLimitExceeded", wantAfter: []string{"sg-1"}},
		"no group at all": {groups: nil, wantKind: cloud.ErrInvalid, wantCode: "MissingParameter", wantAfter: []string{"sg-1"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := seeded(t)
			f.AddSecurityGroup(cloud.SecurityGroup{ID: "sg-2", VPCID: "vpc-1"})
			if tc.quota > 0 {
				f.SecurityGroupsPerENI = tc.quota
			}
			ctx := t.Context()
			b, err := f.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", Type: cloud.InterfaceTypeBranch, SecurityGroups: []string{"sg-1"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.AssociateTrunkInterface(ctx, trunk(t, f), b.ID, 1, ""); err != nil {
				t.Fatal(err)
			}
			err = f.ModifyNetworkInterfaceGroups(ctx, b.ID, tc.groups)
			if !errors.Is(err, tc.wantKind) || cloud.Code(err) != tc.wantCode {
				t.Fatalf("err = %v, want %v/%s", err, tc.wantKind, tc.wantCode)
			}
			if got, _ := f.NetworkInterface(b.ID); !slices.Equal(got.SecurityGroups, tc.wantAfter) {
				t.Fatalf("groups = %v, want %v", got.SecurityGroups, tc.wantAfter)
			}
		})
	}
	f := seeded(t)
	if err := f.ModifyNetworkInterfaceGroups(t.Context(), "eni-nope", []string{"sg-1"}); cloud.Code(err) != "InvalidNetworkInterfaceID.NotFound" {
		t.Fatalf("modifying a missing ENI: %v", err)
	}
}
