package state

import (
	"slices"

	"github.com/podsg/podsg/internal/cloud/instancetypes"
	"github.com/podsg/podsg/internal/vpc/apierr"
)

// CreateENIInput is CreateNetworkInterface's request.
type CreateENIInput struct {
	SubnetID    string
	Description string
	GroupIDs    []string
	// PrivateIP is the requested primary address ("" allocates one).
	PrivateIP string
	// ExtraIPs are requested secondary addresses.
	ExtraIPs       []string
	SecondaryCount int
	InterfaceType  string
	Tags           Tags
	Idempotency    Idempotency
}

func normalizeInterfaceType(t string) (string, error) {
	switch t {
	case "", InterfaceTypeInterface:
		return InterfaceTypeInterface, nil
	case InterfaceTypeTrunk, InterfaceTypeBranch:
		return t, nil
	}
	return "", apierr.InvalidValue("Value (%s) for parameter InterfaceType is invalid. Supported values: trunk, branch, interface.", t)
}

// CreateNetworkInterface creates an available ENI in a subnet.
func (tx *Tx) CreateNetworkInterface(in CreateENIInput) (*ENI, error) {
	if ids, ok, err := tx.replay("CreateNetworkInterface", in.Idempotency); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return tx.replayedENI(ids[0])
	}
	e, err := tx.newENI(in)
	if err != nil {
		return nil, err
	}
	put(tx, tx.m.enis, e.ID, e)
	tx.remember("CreateNetworkInterface", in.Idempotency, e.ID)
	return e, nil
}

func (tx *Tx) replayedENI(id string) (*ENI, error) {
	e, ok := tx.m.enis.get(id)
	if !ok {
		return nil, apierr.New(apierr.CodeIdempotentParameterMismatch,
			"The client token you have provided is associated with a resource that is already deleted. Please use a different client token.")
	}
	return e, nil
}

// newENI builds (but does not store) an ENI.
func (tx *Tx) newENI(in CreateENIInput) (*ENI, error) {
	typ, err := normalizeInterfaceType(in.InterfaceType)
	if err != nil {
		return nil, err
	}
	s, err := tx.lookupSubnet(in.SubnetID)
	if err != nil {
		return nil, err
	}
	groups, err := tx.resolveGroups(in.GroupIDs, s.VPCID, s.ID)
	if err != nil {
		return nil, err
	}
	if err := CheckTags(in.Tags); err != nil {
		return nil, err
	}
	if err := checkText("Description", in.Description); err != nil {
		return nil, err
	}
	if in.SecondaryCount < 0 || 1+len(in.ExtraIPs)+in.SecondaryCount > maxIPsPerUnattachedENI {
		return nil, apierr.New(apierr.CodePrivateIPAddressLimit, "Number of private addresses will exceed limit.")
	}
	ips, err := tx.pickIPs(s, in.PrivateIP, in.ExtraIPs, in.SecondaryCount)
	if err != nil {
		return nil, err
	}
	return &ENI{
		ID:               tx.newID("eni"),
		SubnetID:         s.ID,
		VPCID:            s.VPCID,
		AvailabilityZone: s.AvailabilityZone,
		Description:      in.Description,
		MAC:              tx.newMAC(),
		InterfaceType:    typ,
		PrivateIPs:       ips,
		Groups:           groups,
		SourceDestCheck:  true,
		Tags:             in.Tags,
		CreatedAt:        tx.now,
	}, nil
}

// pickIPs returns the primary address first, then the requested and the
// allocated secondary ones.
func (tx *Tx) pickIPs(s *Subnet, primary string, extra []string, count int) ([]string, error) {
	taken := map[string]bool{}
	var out []string
	for _, ip := range append([]string{primary}, extra...) {
		if ip == "" {
			continue
		}
		a, err := tx.checkRequestedIP(s, ip, taken)
		if err != nil {
			return nil, err
		}
		taken[a] = true
		out = append(out, a)
	}
	need := count
	if primary == "" {
		need++
	}
	alloc, err := tx.allocateIPs(s, need, taken)
	if err != nil {
		return nil, err
	}
	if primary == "" {
		return append(alloc[:1:1], append(out, alloc[1:]...)...), nil
	}
	return append(out, alloc...), nil
}

// DeleteNetworkInterface deletes an ENI that is neither attached nor part
// of a trunk association.
func (tx *Tx) DeleteNetworkInterface(id string) error {
	e, err := tx.lookupENI(id)
	if err != nil {
		return err
	}
	if e.InUse() || len(tx.m.assocsByTrunk[id]) > 0 {
		return apierr.New("InvalidNetworkInterface.InUse", "The network interface %s is currently in use.", id)
	}
	tx.removeENI(id)
	return nil
}

// AttachNetworkInterface attaches an available ENI to a running instance.
func (tx *Tx) AttachNetworkInterface(eniID, instanceID string, deviceIndex int) (*Attachment, error) {
	e, err := tx.lookupENI(eniID)
	if err != nil {
		return nil, err
	}
	inst, err := tx.lookupInstance(instanceID)
	if err != nil {
		return nil, err
	}
	if err := tx.checkAttachable(e, inst, deviceIndex); err != nil {
		return nil, err
	}
	a := &Attachment{ID: tx.newID("eni-attach"), InstanceID: inst.ID, DeviceIndex: deviceIndex, AttachTime: tx.now}
	c := e.clone()
	c.Attachment = a
	put(tx, tx.m.enis, c.ID, c)
	return a, nil
}

func (tx *Tx) checkAttachable(e *ENI, inst *Instance, deviceIndex int) error {
	if inst.State != InstanceRunning {
		return apierr.New("IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", inst.ID)
	}
	if e.InUse() {
		return apierr.New("InvalidNetworkInterface.InUse", "Interface: [%s] in use.", e.ID)
	}
	if e.InterfaceType == InterfaceTypeBranch {
		return apierr.InvalidValue("Branch network interface %s cannot be attached to an instance; associate it with a trunk interface.", e.ID)
	}
	if e.AvailabilityZone != inst.AvailabilityZone || e.VPCID != inst.VPCID {
		return apierr.InvalidValue("The network interface %s and instance %s must be in the same VPC and availability zone.", e.ID, inst.ID)
	}
	return tx.checkSlot(e, inst, deviceIndex)
}

// checkSlot checks that inst has room for e at deviceIndex.
func (tx *Tx) checkSlot(e *ENI, inst *Instance, deviceIndex int) error {
	if deviceIndex < 0 {
		return apierr.InvalidValue("Value (%d) for parameter deviceIndex is invalid.", deviceIndex)
	}
	typ, _ := instancetypes.Lookup(inst.Type)
	if e.InterfaceType == InterfaceTypeTrunk && !typ.Trunking {
		return apierr.New(apierr.CodeUnsupportedOperation, "Instance type %s does not support trunk network interfaces.", inst.Type)
	}
	attached := tx.InstanceInterfaces(inst.ID)
	for _, o := range attached {
		if o.Attachment.DeviceIndex == deviceIndex {
			return apierr.InvalidValue("Instance '%s' already has an interface attached at device index '%d'.", inst.ID, deviceIndex)
		}
		if e.InterfaceType == InterfaceTypeTrunk && o.InterfaceType == InterfaceTypeTrunk {
			return apierr.InvalidValue("Instance '%s' already has a trunk interface (%s).", inst.ID, o.ID)
		}
	}
	if len(attached) >= typ.MaxENIs {
		return apierr.New(apierr.CodeAttachmentLimitExceeded, "Interface count %d exceeds the limit for %s", len(attached)+1, inst.Type)
	}
	// Device indexes run from 0 to the type's interface count less one:
	// an instance has no slot beyond, even with slots free below.
	if deviceIndex >= typ.MaxENIs {
		return apierr.InvalidValue("Value (%d) for parameter deviceIndex is invalid. Instance type %s supports a maximum of %d network interfaces (device indexes 0 to %d).",
			deviceIndex, inst.Type, typ.MaxENIs, typ.MaxENIs-1)
	}
	if len(e.PrivateIPs) > typ.IPv4PerENI {
		return apierr.New(apierr.CodePrivateIPAddressLimit, "Number of private addresses will exceed limit for %s.", inst.Type)
	}
	return nil
}

// DetachNetworkInterface detaches a non-primary ENI.
func (tx *Tx) DetachNetworkInterface(attachmentID string) error {
	if err := kindAttach.check(attachmentID); err != nil {
		return err
	}
	var e *ENI
	for _, cand := range tx.m.enis.rows {
		if cand.Attachment != nil && cand.Attachment.ID == attachmentID {
			e = cand
			break
		}
	}
	if e == nil {
		return kindAttach.missing(attachmentID)
	}
	if e.Attachment.DeviceIndex == 0 {
		return apierr.New("OperationNotPermitted", "The network interface at device index 0 cannot be detached.")
	}
	c := e.clone()
	c.Attachment = nil
	put(tx, tx.m.enis, c.ID, c)
	return nil
}

// ModifyENIInput changes one attribute; nil fields are left alone.
type ModifyENIInput struct {
	ID              string
	GroupIDs        []string
	SourceDestCheck *bool
	Description     *string
	// DeleteOnTermination applies to AttachmentID.
	AttachmentID        string
	DeleteOnTermination *bool
}

// ModifyNetworkInterfaceAttribute changes groups, source/dest check,
// description or the attachment's DeleteOnTermination.
func (tx *Tx) ModifyNetworkInterfaceAttribute(in ModifyENIInput) error {
	e, err := tx.lookupENI(in.ID)
	if err != nil {
		return err
	}
	c := e.clone()
	switch {
	case in.GroupIDs != nil:
		if c.Groups, err = tx.resolveGroups(in.GroupIDs, e.VPCID, e.SubnetID); err != nil {
			return err
		}
	case in.SourceDestCheck != nil:
		c.SourceDestCheck = *in.SourceDestCheck
	case in.Description != nil:
		if err := checkText("Description", *in.Description); err != nil {
			return err
		}
		c.Description = *in.Description
	case in.DeleteOnTermination != nil:
		if e.Attachment == nil || e.Attachment.ID != in.AttachmentID {
			return kindAttach.missing(in.AttachmentID)
		}
		c.Attachment.DeleteOnTermination = *in.DeleteOnTermination
	default:
		return apierr.Missing("attribute")
	}
	put(tx, tx.m.enis, c.ID, c)
	return nil
}

// ipLimit is the per-ENI address limit: the attached instance type's, or
// the largest any type allows for an unattached ENI.
func (tx *Tx) ipLimit(e *ENI) int {
	if e.Attachment == nil {
		return maxIPsPerUnattachedENI
	}
	inst, _ := tx.m.instances.get(e.Attachment.InstanceID)
	if typ, ok := instancetypes.Lookup(inst.Type); ok {
		return typ.IPv4PerENI
	}
	return maxIPsPerUnattachedENI
}

// AssignPrivateIPs adds secondary addresses, explicit or allocated. With
// allowReassign, explicit addresses held as secondaries by another ENI in
// the subnet move to this one.
func (tx *Tx) AssignPrivateIPs(eniID string, ips []string, count int, allowReassign bool) ([]string, error) {
	e, err := tx.lookupENI(eniID)
	if err != nil {
		return nil, err
	}
	if count < 0 || len(e.PrivateIPs)+len(ips)+count > tx.ipLimit(e) {
		return nil, apierr.New(apierr.CodePrivateIPAddressLimit, "Number of private addresses will exceed limit.")
	}
	s, _ := tx.m.subnets.get(e.SubnetID)
	if allowReassign {
		if err := tx.releaseForReassign(s, e.ID, ips); err != nil {
			return nil, err
		}
	}
	added, err := tx.allocateIPs(s, count, nil)
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, ip := range ips {
		a, err := tx.checkRequestedIP(s, ip, taken)
		if err != nil {
			return nil, err
		}
		taken[a] = true
		added = append(added, a)
	}
	c := e.clone()
	c.PrivateIPs = append(c.PrivateIPs, added...)
	put(tx, tx.m.enis, c.ID, c)
	return added, nil
}

func (tx *Tx) releaseForReassign(s *Subnet, eniID string, ips []string) error {
	for _, ip := range ips {
		owner, used := tx.m.ipOwner[s.ID][ip]
		if !used || owner == eniID {
			continue
		}
		o, _ := tx.m.enis.get(owner)
		if o.PrivateIPs[0] == ip {
			return apierr.New("InvalidIPAddress.InUse", "Address %s is the primary address of %s and cannot be reassigned.", ip, owner)
		}
		c := o.clone()
		c.PrivateIPs = slices.DeleteFunc(c.PrivateIPs, func(x string) bool { return x == ip })
		put(tx, tx.m.enis, c.ID, c)
	}
	return nil
}

// UnassignPrivateIPs removes secondary addresses.
func (tx *Tx) UnassignPrivateIPs(eniID string, ips []string) error {
	e, err := tx.lookupENI(eniID)
	if err != nil {
		return err
	}
	c := e.clone()
	for _, ip := range ips {
		i := slices.Index(c.PrivateIPs, ip)
		switch {
		case i < 0:
			return apierr.InvalidValue("Some of the specified addresses are not assigned to interface %s", eniID)
		case i == 0:
			return apierr.InvalidValue("The primary private address %s of interface %s cannot be unassigned", ip, eniID)
		}
		c.PrivateIPs = slices.Delete(c.PrivateIPs, i, i+1)
	}
	put(tx, tx.m.enis, c.ID, c)
	return nil
}
