package state

import (
	"github.com/podsg/podsg/internal/cloud/instancetypes"
	"github.com/podsg/podsg/internal/vpc/apierr"
)

// AssociateInput is AssociateTrunkInterface's request.
type AssociateInput struct {
	BranchID    string
	TrunkID     string
	VlanID      int
	Idempotency Idempotency
}

// AssociateTrunkInterface makes an ENI a VLAN branch of a trunk ENI.
func (tx *Tx) AssociateTrunkInterface(in AssociateInput) (*TrunkAssociation, error) {
	if ids, ok, err := tx.replay("AssociateTrunkInterface", in.Idempotency); err != nil || ok {
		if err != nil {
			return nil, err
		}
		if a, found := tx.m.assocs.get(ids[0]); found {
			return a, nil
		}
		return nil, apierr.New(apierr.CodeIdempotentParameterMismatch,
			"The client token you have provided is associated with a resource that is already deleted. Please use a different client token.")
	}
	if in.VlanID < 1 || in.VlanID > 4094 {
		return nil, apierr.InvalidValue("Value (%d) for parameter vlanId is invalid. Expected a value between 1 and 4094.", in.VlanID)
	}
	trunk, err := tx.lookupENI(in.TrunkID)
	if err != nil {
		return nil, err
	}
	branch, err := tx.lookupENI(in.BranchID)
	if err != nil {
		return nil, err
	}
	if err := tx.checkTrunk(trunk); err != nil {
		return nil, err
	}
	if err := checkBranch(trunk, branch); err != nil {
		return nil, err
	}
	if owner, used := tx.m.vlanOwner[trunk.ID][in.VlanID]; used {
		return nil, apierr.InvalidValue("VLAN ID %d is already in use on trunk interface %s by association %s.", in.VlanID, trunk.ID, owner)
	}
	a := &TrunkAssociation{ID: tx.newID("trunk-assoc"), TrunkID: trunk.ID, BranchID: branch.ID, VlanID: in.VlanID}
	put(tx, tx.m.assocs, a.ID, a)
	c := branch.clone()
	c.TrunkAssociationID = a.ID
	put(tx, tx.m.enis, c.ID, c)
	tx.remember("AssociateTrunkInterface", in.Idempotency, a.ID)
	return a, nil
}

// checkTrunk requires a trunk ENI attached to an instance whose type supports
// trunking and has room for another branch.
func (tx *Tx) checkTrunk(trunk *ENI) error {
	if trunk.InterfaceType != InterfaceTypeTrunk {
		return apierr.InvalidValue("Network interface %s is not a trunk interface.", trunk.ID)
	}
	if trunk.Attachment == nil {
		return apierr.New(apierr.CodeIncorrectState, "Trunk interface %s is not attached to an instance.", trunk.ID)
	}
	inst, _ := tx.m.instances.get(trunk.Attachment.InstanceID)
	typ, ok := instancetypes.Lookup(inst.Type)
	if !ok || !typ.Trunking {
		return apierr.New(apierr.CodeUnsupportedOperation, "Instance type %s does not support trunk network interfaces.", inst.Type)
	}
	if len(tx.m.assocsByTrunk[trunk.ID]) >= typ.BranchENIs {
		return apierr.New("TrunkInterfaceAssociationLimitExceeded",
			"Trunk interface %s already has the maximum number of branch interfaces (%d) for %s.", trunk.ID, typ.BranchENIs, inst.Type)
	}
	return nil
}

func checkBranch(trunk, branch *ENI) error {
	switch {
	case branch.ID == trunk.ID || branch.InterfaceType == InterfaceTypeTrunk:
		return apierr.InvalidValue("Network interface %s cannot be a branch interface.", branch.ID)
	case branch.TrunkAssociationID != "":
		return apierr.New("InvalidNetworkInterface.InUse", "Network interface %s is already associated with a trunk interface (%s).", branch.ID, branch.TrunkAssociationID)
	case branch.Attachment != nil:
		return apierr.New("InvalidNetworkInterface.InUse", "Network interface %s is attached to an instance and cannot be a branch interface.", branch.ID)
	case branch.VPCID != trunk.VPCID || branch.AvailabilityZone != trunk.AvailabilityZone:
		return apierr.InvalidValue("Branch interface %s must be in the same VPC and availability zone as trunk interface %s.", branch.ID, trunk.ID)
	}
	return nil
}

// DisassociateTrunkInterface removes an association; the branch becomes available.
func (tx *Tx) DisassociateTrunkInterface(id string, idem Idempotency) error {
	if _, ok, err := tx.replay("DisassociateTrunkInterface", idem); err != nil || ok {
		return err
	}
	a, err := tx.lookupAssoc(id)
	if err != nil {
		return err
	}
	tx.dropAssociation(a)
	tx.remember("DisassociateTrunkInterface", idem, a.ID)
	return nil
}

func (tx *Tx) dropAssociation(a *TrunkAssociation) {
	if b, ok := tx.m.enis.get(a.BranchID); ok && b.TrunkAssociationID == a.ID {
		c := b.clone()
		c.TrunkAssociationID = ""
		put(tx, tx.m.enis, c.ID, c)
	}
	remove(tx, tx.m.assocs, a.ID)
}
