package fake

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/cloud"
)

// CreateNetworkInterface creates an ENI in a subnet, idempotently per ClientToken.
func (f *EC2) CreateNetworkInterface(ctx context.Context, in cloud.CreateNetworkInterfaceInput) (cloud.NetworkInterface, error) {
	const op = ActionCreateNetworkInterface
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return cloud.NetworkInterface{}, err
	}
	fp := fmt.Sprintf("%s|%s|%s|%v", in.SubnetID, in.Type, in.Description, in.SecurityGroups)
	if in.ClientToken != "" {
		if te, ok := f.tokens[op+"/"+in.ClientToken]; ok {
			if te.fingerprint != fp {
				return cloud.NetworkInterface{}, f.end(flt, apiErr(op, "IdempotentParameterMismatch", cloud.ErrInvalid,
					"The client token you have provided is associated with a resource that is already deleted or has different parameters."))
			}
			if eni, ok := f.enis[te.id]; ok {
				return copyENI(eni), f.end(flt, nil)
			}
		}
	}
	sn, err := f.checkCreate(in)
	if err != nil {
		return cloud.NetworkInterface{}, f.end(flt, err)
	}
	typ := in.Type
	if typ == "" {
		typ = cloud.InterfaceTypeInterface
	}
	eni := f.newENI(sn, typ, in.Description, in.SecurityGroups, in.Tags)
	if eni.PrivateIP == "" {
		delete(f.enis, eni.ID)
		return cloud.NetworkInterface{}, f.end(flt, apiErr(op, "InsufficientFreeAddressesInSubnet", cloud.ErrQuota,
			"There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", sn.ID))
	}
	if in.SecondaryIPCount > 0 {
		if _, err := f.addSecondaryIPs(op, eni, in.SecondaryIPCount); err != nil {
			delete(f.enis, eni.ID)
			return cloud.NetworkInterface{}, f.end(flt, err)
		}
	}
	if in.ClientToken != "" {
		f.tokens[op+"/"+in.ClientToken] = tokenEntry{id: eni.ID, fingerprint: fp}
	}
	return copyENI(eni), f.end(flt, nil)
}

// checkCreate validates a CreateNetworkInterface and returns its subnet. Callers hold f.mu.
func (f *EC2) checkCreate(in cloud.CreateNetworkInterfaceInput) (*subnet, error) {
	const op = ActionCreateNetworkInterface
	sn, ok := f.subnets[in.SubnetID]
	if !ok {
		return nil, apiErr(op, "InvalidSubnetID.NotFound", cloud.ErrNotFound, "The subnet ID '%s' does not exist", in.SubnetID)
	}
	switch in.Type {
	case "", cloud.InterfaceTypeInterface, cloud.InterfaceTypeTrunk, cloud.InterfaceTypeBranch:
	default:
		return nil, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid, "Invalid value '%s' for InterfaceType", in.Type)
	}
	if err := f.checkGroups(op, in.SecurityGroups); err != nil {
		return nil, err
	}
	for _, id := range in.SecurityGroups {
		if g := f.groups[id]; g.VPCID != sn.VPCID {
			return nil, apiErr(op, "InvalidParameter", cloud.ErrInvalid, "Security group %s and subnet %s belong to different networks.", id, sn.ID)
		}
	}
	if len(in.SecurityGroups) > f.SecurityGroupsPerENI {
		return nil, apiErr(op, "SecurityGroupsPerInterfaceLimitExceeded", cloud.ErrQuota,
			"The maximum number of security groups per interface has been reached.")
	}
	return sn, nil
}

// newENI creates an available ENI with the next free address of sn (PrivateIP "" when the
// subnet is full). Callers hold f.mu.
func (f *EC2) newENI(sn *subnet, typ, desc string, groups []string, tags map[string]string) *cloud.NetworkInterface {
	id := f.nextID("eni")
	n := f.seq["eni"]
	eni := &cloud.NetworkInterface{
		ID: id, Type: typ, Status: "available", SubnetID: sn.ID, VPCID: sn.VPCID,
		MAC:         fmt.Sprintf("02:50:%02x:%02x:%02x:%02x", n>>24&0xff, n>>16&0xff, n>>8&0xff, n&0xff),
		Description: desc, SecurityGroups: append([]string(nil), groups...), Tags: map[string]string{}, DeviceIndex: -1,
	}
	for k, v := range tags {
		eni.Tags[k] = v
	}
	eni.PrivateIP = nextAddress(sn)
	f.enis[id] = eni
	return eni
}

// DeleteNetworkInterface deletes an available ENI. Attached or trunk-associated ENIs are in
// use, like in EC2.
func (f *EC2) DeleteNetworkInterface(ctx context.Context, id string) error {
	const op = ActionDeleteNetworkInterface
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return err
	}
	eni, ok := f.enis[id]
	if !ok {
		return f.end(flt, apiErr(op, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound,
			"The networkInterface ID '%s' does not exist", id))
	}
	if eni.AttachmentID != "" || f.associationOf(id) != "" {
		return f.end(flt, apiErr(op, "InvalidNetworkInterface.InUse", cloud.ErrConflict,
			"The network interface '%s' is currently in use.", id))
	}
	if eni.Type == cloud.InterfaceTypeTrunk {
		for _, a := range f.assocs {
			if a.TrunkID == id {
				return f.end(flt, apiErr(op, "InvalidNetworkInterface.InUse", cloud.ErrConflict,
					"The trunk network interface '%s' has branch associations.", id))
			}
		}
	}
	delete(f.enis, id)
	return f.end(flt, nil)
}

// AttachNetworkInterface attaches an available ENI to an instance of the same availability zone.
func (f *EC2) AttachNetworkInterface(ctx context.Context, eniID, instanceID string, deviceIndex int) (string, error) {
	const op = ActionAttachNetworkInterface
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return "", err
	}
	eni, ok := f.enis[eniID]
	if !ok {
		return "", f.end(flt, apiErr(op, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound,
			"The networkInterface ID '%s' does not exist", eniID))
	}
	in, ok := f.instances[instanceID]
	if !ok {
		return "", f.end(flt, apiErr(op, "InvalidInstanceID.NotFound", cloud.ErrNotFound,
			"The instance ID '%s' does not exist", instanceID))
	}
	if eni.AttachmentID != "" || f.associationOf(eniID) != "" {
		return "", f.end(flt, apiErr(op, "InvalidNetworkInterface.InUse", cloud.ErrConflict,
			"Interface: [%s] in use.", eniID))
	}
	if f.subnets[eni.SubnetID].AvailabilityZone != f.subnets[in.SubnetID].AvailabilityZone {
		return "", f.end(flt, apiErr(op, "InvalidParameterCombination", cloud.ErrInvalid,
			"You may not attach a network interface to an instance if they are not in the same availability zone"))
	}
	var attached []int
	for _, e := range f.enis {
		if e.InstanceID == instanceID {
			attached = append(attached, e.DeviceIndex)
		}
	}
	if slices.Contains(attached, deviceIndex) {
		return "", f.end(flt, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid,
			"Instance '%s' already has an interface attached at device index '%d'.", instanceID, deviceIndex))
	}
	if len(attached) >= in.MaxENIs {
		return "", f.end(flt, apiErr(op, "AttachmentLimitExceeded", cloud.ErrQuota,
			"Interface count %d exceeds the limit for %s", len(attached)+1, in.Type))
	}
	eni.AttachmentID, eni.InstanceID, eni.DeviceIndex, eni.Status = f.nextID("eni-attach"), instanceID, deviceIndex, "in-use"
	return eni.AttachmentID, f.end(flt, nil)
}

// DetachNetworkInterface detaches by attachment id. The fake detaches at once; EC2 passes
// through "detaching", which callers must tolerate anyway by retrying a delete on conflict.
func (f *EC2) DetachNetworkInterface(ctx context.Context, attachmentID string, _ bool) error {
	const op = ActionDetachNetworkInterface
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return err
	}
	for _, eni := range f.enis {
		if eni.AttachmentID != attachmentID {
			continue
		}
		if eni.DeviceIndex == 0 {
			return f.end(flt, apiErr(op, "OperationNotPermitted", cloud.ErrInvalid,
				"The network interface at device index 0 cannot be detached."))
		}
		eni.AttachmentID, eni.InstanceID, eni.DeviceIndex, eni.Status = "", "", -1, "available"
		return f.end(flt, nil)
	}
	if !strings.HasPrefix(attachmentID, "eni-attach-") {
		return f.end(flt, apiErr(op, "InvalidAttachmentID.Malformed", cloud.ErrInvalid, "Invalid id: \"%s\"", attachmentID))
	}
	return f.end(flt, apiErr(op, "InvalidAttachmentID.NotFound", cloud.ErrNotFound,
		"The attachment ID '%s' does not exist", attachmentID))
}

// ModifyNetworkInterfaceGroups replaces an ENI's security groups, as
// ModifyNetworkInterfaceAttribute with Groups does: every group must exist, be of the ENI's
// VPC and fit the per-ENI quota, or nothing changes.
func (f *EC2) ModifyNetworkInterfaceGroups(ctx context.Context, eniID string, groups []string) error {
	const op = ActionModifyNetworkInterfaceAttribute
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return err
	}
	eni, ok := f.enis[eniID]
	if !ok {
		return f.end(flt, apiErr(op, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound,
			"The networkInterface ID '%s' does not exist", eniID))
	}
	if len(groups) == 0 {
		return f.end(flt, apiErr(op, "MissingParameter", cloud.ErrInvalid, "The request must contain the parameter groupId"))
	}
	if err := f.checkGroups(op, groups); err != nil {
		return f.end(flt, err)
	}
	for _, id := range groups {
		if g := f.groups[id]; g.VPCID != eni.VPCID {
			return f.end(flt, apiErr(op, "InvalidParameter", cloud.ErrInvalid,
				"Security group %s and interface %s belong to different networks.", id, eniID))
		}
	}
	if len(groups) > f.SecurityGroupsPerENI {
		return f.end(flt, apiErr(op, "SecurityGroupsPerInterfaceLimitExceeded", cloud.ErrQuota,
			"The maximum number of security groups per interface has been reached."))
	}
	eni.SecurityGroups = append([]string(nil), groups...)
	return f.end(flt, nil)
}
