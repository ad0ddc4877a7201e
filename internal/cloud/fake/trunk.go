package fake

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/cloud"
)

// MaxVLAN is the highest VLAN id EC2 accepts for a trunk association.
const MaxVLAN = 4094

// AssociateTrunkInterface ties a branch ENI to an attached trunk under a VLAN id unique on
// that trunk, within the instance's branch limit; idempotent per ClientToken.
func (f *EC2) AssociateTrunkInterface(ctx context.Context, trunkID, branchID string, vlan int, clientToken string) (cloud.TrunkAssociation, error) {
	const op = ActionAssociateTrunkInterface
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return cloud.TrunkAssociation{}, err
	}
	fp := fmt.Sprintf("%s|%s|%d", trunkID, branchID, vlan)
	if clientToken != "" {
		if te, ok := f.tokens[op+"/"+clientToken]; ok {
			if te.fingerprint != fp {
				return cloud.TrunkAssociation{}, f.end(flt, apiErr(op, "IdempotentParameterMismatch", cloud.ErrInvalid,
					"The client token you have provided is associated with a resource that has different parameters."))
			}
			if a, ok := f.assocs[te.id]; ok {
				return a, f.end(flt, nil)
			}
		}
	}
	a, err := f.associate(trunkID, branchID, vlan)
	if err != nil {
		return cloud.TrunkAssociation{}, f.end(flt, err)
	}
	if clientToken != "" {
		f.tokens[op+"/"+clientToken] = tokenEntry{id: a.ID, fingerprint: fp}
	}
	return a, f.end(flt, nil)
}

func (f *EC2) associate(trunkID, branchID string, vlan int) (cloud.TrunkAssociation, error) {
	const op = ActionAssociateTrunkInterface
	trunk, ok := f.enis[trunkID]
	if !ok {
		return cloud.TrunkAssociation{}, apiErr(op, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound,
			"The networkInterface ID '%s' does not exist", trunkID)
	}
	branch, ok := f.enis[branchID]
	if !ok {
		return cloud.TrunkAssociation{}, apiErr(op, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound,
			"The networkInterface ID '%s' does not exist", branchID)
	}
	if trunk.Type != cloud.InterfaceTypeTrunk || trunk.InstanceID == "" {
		return cloud.TrunkAssociation{}, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid,
			"Network interface '%s' is not an attached trunk interface.", trunkID)
	}
	if branch.Type == cloud.InterfaceTypeTrunk || branch.AttachmentID != "" || f.associationOf(branchID) != "" {
		return cloud.TrunkAssociation{}, apiErr(op, "InvalidNetworkInterface.InUse", cloud.ErrConflict,
			"Network interface '%s' is in use.", branchID)
	}
	if vlan < 1 || vlan > MaxVLAN {
		return cloud.TrunkAssociation{}, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid,
			"Invalid value '%d' for VlanId: must be between 1 and %d.", vlan, MaxVLAN)
	}
	n := 0
	for _, a := range f.assocs {
		if a.TrunkID != trunkID {
			continue
		}
		n++
		if a.VLAN == vlan {
			return cloud.TrunkAssociation{}, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid,
				"VLAN id %d is already in use on trunk interface '%s'.", vlan, trunkID)
		}
	}
	if limit := f.instances[trunk.InstanceID].MaxBranches; n >= limit {
		return cloud.TrunkAssociation{}, apiErr(op, "TrunkInterfaceLimitExceeded", cloud.ErrQuota,
			"Trunk interface '%s' already has the maximum of %d branch interfaces.", trunkID, limit)
	}
	a := cloud.TrunkAssociation{ID: f.nextID("trunk-assoc"), TrunkID: trunkID, BranchID: branchID, VLAN: vlan}
	f.assocs[a.ID] = a
	branch.Status = "in-use"
	return a, nil
}

// DisassociateTrunkInterface removes an association; the branch ENI becomes available.
func (f *EC2) DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error {
	const op = ActionDisassociateTrunkInterface
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return err
	}
	a, ok := f.assocs[associationID]
	if !ok {
		// A retry with the token of a disassociation that already happened succeeds, as in EC2.
		if te, done := f.tokens[op+"/"+clientToken]; clientToken != "" && done && te.id == associationID {
			return f.end(flt, nil)
		}
		if !strings.HasPrefix(associationID, "trunk-assoc-") {
			return f.end(flt, apiErr(op, "InvalidAssociationID.Malformed", cloud.ErrInvalid, "Invalid id: \"%s\"", associationID))
		}
		return f.end(flt, apiErr(op, "InvalidAssociationID.NotFound", cloud.ErrNotFound,
			"The association ID '%s' does not exist", associationID))
	}
	delete(f.assocs, associationID)
	if b, ok := f.enis[a.BranchID]; ok {
		b.Status = "available"
	}
	if clientToken != "" {
		f.tokens[op+"/"+clientToken] = tokenEntry{id: associationID}
	}
	return f.end(flt, nil)
}

// DescribeTrunkInterfaceAssociations lists the associations of the trunks, in one call (the
// fake has no pages), sorted by trunk and VLAN.
func (f *EC2) DescribeTrunkInterfaceAssociations(ctx context.Context, trunkIDs ...string) ([]cloud.TrunkAssociation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, ActionDescribeTrunkInterfaceAssociations)
	if err != nil {
		return nil, err
	}
	var out []cloud.TrunkAssociation
	for _, a := range f.assocs {
		if slices.Contains(trunkIDs, a.TrunkID) {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b cloud.TrunkAssociation) int {
		return cmp.Or(strings.Compare(a.TrunkID, b.TrunkID), a.VLAN-b.VLAN)
	})
	return out, f.end(flt, nil)
}

// associationOf returns the id of the association a branch ENI is in, or "".
func (f *EC2) associationOf(branchID string) string {
	for id, a := range f.assocs {
		if a.BranchID == branchID {
			return id
		}
	}
	return ""
}
