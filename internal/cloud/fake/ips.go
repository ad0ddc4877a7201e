package fake

import (
	"context"
	"net/netip"
	"slices"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/instancetypes"
)

// Actions of the node agent's IP pool, as EC2 spells them.
const (
	ActionAssignPrivateIPAddresses   = "AssignPrivateIpAddresses"
	ActionUnassignPrivateIPAddresses = "UnassignPrivateIpAddresses"
	// actionModifyAttachment is what SetDeleteOnTermination calls in EC2.
	actionModifyAttachment = "ModifyNetworkInterfaceAttribute"
)

// maxIPsPerUnattachedENI is EC2's limit on an ENI that no instance type bounds yet.
const maxIPsPerUnattachedENI = 50

// AssignPrivateIPs adds count secondary IPs of the ENI's subnet to it, within the IPv4
// addresses per ENI of the instance type it is attached to.
func (f *EC2) AssignPrivateIPs(ctx context.Context, eniID string, count int) ([]string, error) {
	const op = ActionAssignPrivateIPAddresses
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return nil, err
	}
	eni, ok := f.enis[eniID]
	if !ok {
		return nil, f.end(flt, eniNotFound(op, eniID))
	}
	if count < 1 {
		return nil, f.end(flt, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid,
			"Value (%d) for parameter secondaryPrivateIpAddressCount is invalid. Expected a positive number.", count))
	}
	ips, err := f.addSecondaryIPs(op, eni, count)
	return ips, f.end(flt, err)
}

// addSecondaryIPs assigns count more addresses of eni's subnet to it. Callers hold f.mu.
func (f *EC2) addSecondaryIPs(op string, eni *cloud.NetworkInterface, count int) ([]string, error) {
	if 1+len(eni.SecondaryIPs)+count > f.ipLimit(eni) {
		return nil, apiErr(op, "PrivateIpAddressLimitExceeded", cloud.ErrQuota, "Number of private addresses will exceed limit.")
	}
	sn := f.subnets[eni.SubnetID]
	var ips []string
	for range count {
		ip := nextAddress(sn)
		if ip == "" {
			sn.next -= len(ips) // all or nothing
			return nil, apiErr(op, "InsufficientFreeAddressesInSubnet", cloud.ErrQuota,
				"There are not enough free addresses in subnet '%s' to satisfy the requested number of addresses.", sn.ID)
		}
		ips = append(ips, ip)
	}
	eni.SecondaryIPs = append(eni.SecondaryIPs, ips...)
	return ips, nil
}

// ipLimit is how many IPv4 addresses (primary included) eni may hold. Callers hold f.mu.
func (f *EC2) ipLimit(eni *cloud.NetworkInterface) int {
	if in, ok := f.instances[eni.InstanceID]; ok {
		if typ, ok := instancetypes.Lookup(in.Type); ok {
			return typ.IPv4PerENI
		}
	}
	return maxIPsPerUnattachedENI
}

// UnassignPrivateIPs removes secondary IPs from an ENI: all of them or, when one is not a
// secondary IP of the ENI, none.
func (f *EC2) UnassignPrivateIPs(ctx context.Context, eniID string, ips []string) error {
	const op = ActionUnassignPrivateIPAddresses
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return err
	}
	eni, ok := f.enis[eniID]
	if !ok {
		return f.end(flt, eniNotFound(op, eniID))
	}
	if len(ips) == 0 {
		return f.end(flt, apiErr(op, "MissingParameter", cloud.ErrInvalid,
			"The request must contain the parameter privateIpAddress"))
	}
	for _, ip := range ips {
		if ip == eni.PrivateIP {
			return f.end(flt, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid,
				"Value (%s) for parameter privateIpAddress is invalid. The primary IP address of an interface cannot be unassigned.", ip))
		}
		if !slices.Contains(eni.SecondaryIPs, ip) {
			return f.end(flt, apiErr(op, "InvalidParameterValue", cloud.ErrInvalid,
				"Some of the specified addresses are not assigned to interface %s", eniID))
		}
	}
	eni.SecondaryIPs = slices.DeleteFunc(eni.SecondaryIPs, func(ip string) bool { return slices.Contains(ips, ip) })
	return f.end(flt, nil)
}

// SetDeleteOnTermination marks an attachment delete-on-termination. The fake keeps no such
// flag (it terminates no instances); it checks the attachment is the ENI's.
func (f *EC2) SetDeleteOnTermination(ctx context.Context, eniID, attachmentID string) error {
	const op = actionModifyAttachment
	f.mu.Lock()
	defer f.mu.Unlock()
	flt, err := f.begin(ctx, op)
	if err != nil {
		return err
	}
	eni, ok := f.enis[eniID]
	if !ok {
		return f.end(flt, eniNotFound(op, eniID))
	}
	if eni.AttachmentID != attachmentID {
		return f.end(flt, apiErr(op, "InvalidAttachmentID.NotFound", cloud.ErrNotFound,
			"The attachment ID '%s' does not exist", attachmentID))
	}
	return f.end(flt, nil)
}

func eniNotFound(op, id string) error {
	return apiErr(op, "InvalidNetworkInterfaceID.NotFound", cloud.ErrNotFound, "The networkInterface ID '%s' does not exist", id)
}

// nextAddress hands out the next unused address of sn, or "" when it has none left. EC2
// reserves the first four and the last address of a subnet. Callers hold f.mu.
func nextAddress(sn *subnet) string {
	p, err := netip.ParsePrefix(sn.CIDR)
	if err != nil {
		return ""
	}
	addr := p.Masked().Addr()
	for range sn.next {
		addr = addr.Next()
	}
	if !p.Contains(addr) || !p.Contains(addr.Next()) {
		return ""
	}
	sn.next++
	return addr.String()
}
