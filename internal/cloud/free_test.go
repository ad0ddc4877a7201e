package cloud_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/fake"
)

// trunkWithBranch seeds an instance with an attached trunk carrying one branch, in the fake,
// which refuses (as EC2 does) to delete an associated branch, an attached ENI or a trunk with
// associations.
func trunkWithBranch(t *testing.T) (f *fake.EC2, trunk, branch cloud.NetworkInterface, assoc cloud.TrunkAssociation) {
	t.Helper()
	ctx := t.Context()
	f = fake.New()
	f.AddSubnet(cloud.Subnet{ID: "subnet-1", VPCID: "vpc-1", CIDR: "10.0.0.0/24", AvailabilityZone: "us-west-2a"})
	f.AddSecurityGroup(cloud.SecurityGroup{ID: "sg-1", VPCID: "vpc-1"})
	if err := f.AddInstance(fake.Instance{ID: "i-1", Type: "m5.large", SubnetID: "subnet-1", SecurityGroups: []string{"sg-1"}}); err != nil {
		t.Fatal(err)
	}
	create := func(typ string) cloud.NetworkInterface {
		e, err := f.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: "subnet-1", Type: typ, SecurityGroups: []string{"sg-1"}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	trunk, branch = create(cloud.InterfaceTypeTrunk), create(cloud.InterfaceTypeBranch)
	var err error
	if trunk.AttachmentID, err = f.AttachNetworkInterface(ctx, trunk.ID, "i-1", 1); err != nil {
		t.Fatal(err)
	}
	if assoc, err = f.AssociateTrunkInterface(ctx, trunk.ID, branch.ID, 1, ""); err != nil {
		t.Fatal(err)
	}
	return f, trunk, branch, assoc
}

// TestFreeENI pins the teardown sequence: disassociate, detach, delete, each step optional and
// tolerant of work already done, stopping at the first failure so that a retry resumes.
func TestFreeENI(t *testing.T) {
	type step struct {
		ref     func(trunk, branch cloud.NetworkInterface, a cloud.TrunkAssociation) cloud.ENIRef
		wantErr bool
	}
	branchRef := func(_, b cloud.NetworkInterface, a cloud.TrunkAssociation) cloud.ENIRef {
		return cloud.ENIRef{ID: b.ID, AssociationID: a.ID}
	}
	trunkRef := func(tr, _ cloud.NetworkInterface, _ cloud.TrunkAssociation) cloud.ENIRef {
		return cloud.ENIRef{ID: tr.ID, AttachmentID: tr.AttachmentID}
	}
	tests := map[string]struct {
		fault     func(f *fake.EC2)
		steps     []step
		wantGone  []string // "trunk", "branch", "assoc"
		wantCalls []string
	}{
		"a branch, then its trunk": {
			steps:    []step{{ref: branchRef}, {ref: trunkRef}},
			wantGone: []string{"trunk", "branch", "assoc"},
			wantCalls: []string{fake.ActionDisassociateTrunkInterface, fake.ActionDeleteNetworkInterface,
				fake.ActionDetachNetworkInterface, fake.ActionDeleteNetworkInterface},
		},
		"a trunk still carrying a branch is detached, not deleted": {
			steps:     []step{{ref: trunkRef, wantErr: true}},
			wantCalls: []string{fake.ActionDetachNetworkInterface, fake.ActionDeleteNetworkInterface},
		},
		"freed twice: the second time is a no-op": {
			steps:    []step{{ref: branchRef}, {ref: branchRef}},
			wantGone: []string{"branch", "assoc"},
			wantCalls: []string{fake.ActionDisassociateTrunkInterface, fake.ActionDeleteNetworkInterface,
				fake.ActionDisassociateTrunkInterface, fake.ActionDeleteNetworkInterface},
		},
		"only the association": {
			steps: []step{{ref: func(_, _ cloud.NetworkInterface, a cloud.TrunkAssociation) cloud.ENIRef {
				return cloud.ENIRef{AssociationID: a.ID}
			}}},
			wantGone:  []string{"assoc"},
			wantCalls: []string{fake.ActionDisassociateTrunkInterface},
		},
		"a failed disassociation stops before the delete; the retry resumes": {
			fault: func(f *fake.EC2) {
				f.NextError(fake.ActionDisassociateTrunkInterface, fake.Unavailable(fake.ActionDisassociateTrunkInterface))
			},
			steps:    []step{{ref: branchRef, wantErr: true}, {ref: branchRef}},
			wantGone: []string{"branch", "assoc"},
			wantCalls: []string{fake.ActionDisassociateTrunkInterface,
				fake.ActionDisassociateTrunkInterface, fake.ActionDeleteNetworkInterface},
		},
		"a failed delete after the disassociation; the retry deletes": {
			fault: func(f *fake.EC2) {
				f.NextError(fake.ActionDeleteNetworkInterface, fake.Throttled(fake.ActionDeleteNetworkInterface))
			},
			steps:    []step{{ref: branchRef, wantErr: true}, {ref: branchRef}},
			wantGone: []string{"branch", "assoc"},
			wantCalls: []string{fake.ActionDisassociateTrunkInterface, fake.ActionDeleteNetworkInterface,
				fake.ActionDisassociateTrunkInterface, fake.ActionDeleteNetworkInterface},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f, trunk, branch, assoc := trunkWithBranch(t)
			before := len(f.CallLog())
			if tc.fault != nil {
				tc.fault(f)
			}
			for i, s := range tc.steps {
				err := cloud.FreeENI(t.Context(), f, s.ref(trunk, branch, assoc))
				if (err != nil) != s.wantErr {
					t.Fatalf("step %d: FreeENI = %v, want error %v", i, err, s.wantErr)
				}
			}
			var calls []string
			for _, c := range f.CallLog()[before:] {
				calls = append(calls, c.Action)
			}
			if !slices.Equal(calls, tc.wantCalls) {
				t.Errorf("calls = %v, want %v", calls, tc.wantCalls)
			}
			_, trunkLeft := f.NetworkInterface(trunk.ID)
			_, branchLeft := f.NetworkInterface(branch.ID)
			assocLeft := len(f.Associations()) > 0
			for what, left := range map[string]bool{"trunk": trunkLeft, "branch": branchLeft, "assoc": assocLeft} {
				if gone := slices.Contains(tc.wantGone, what); left == gone {
					t.Errorf("%s left = %v, want gone %v", what, left, gone)
				}
			}
		})
	}
}

// TestFreeENIWrapsTheKind: callers decide retries with errors.Is on the kind.
func TestFreeENIWrapsTheKind(t *testing.T) {
	f, trunk, _, _ := trunkWithBranch(t)
	err := cloud.FreeENI(t.Context(), f, cloud.ENIRef{ID: trunk.ID, AttachmentID: trunk.AttachmentID})
	if !errors.Is(err, cloud.ErrConflict) {
		t.Fatalf("deleting a trunk with a branch: %v, want a conflict", err)
	}
}
