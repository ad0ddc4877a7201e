package state

import (
	"time"

	"github.com/podsg/podsg/internal/cloud/instancetypes"
	"github.com/podsg/podsg/internal/vpc/apierr"
)

// terminatedVisibility is how long EC2 keeps listing terminated instances.
const terminatedVisibility = time.Hour

// Expired reports whether a terminated instance no longer shows up.
func (i *Instance) Expired(now time.Time) bool {
	return i.State == InstanceTerminated && now.Sub(i.TerminatedAt) >= terminatedVisibility
}

// RunInput is RunInstances' request.
type RunInput struct {
	ImageID      string
	InstanceType string
	SubnetID     string
	GroupIDs     []string
	PrivateIP    string
	MinCount     int
	MaxCount     int
	// Interfaces are NetworkInterface.N; the one at device index 0, if any,
	// replaces SubnetID/GroupIDs/PrivateIP for the primary interface.
	Interfaces   []InterfaceSpec
	InstanceTags Tags
	ENITags      Tags
	Idempotency  Idempotency
	// MetadataOptions change EC2's defaults for the new instances.
	MetadataOptions MetadataOptionsInput
	// IAMProfile is IamInstanceProfile (by ARN or name); zero for none.
	IAMProfile ProfileRef
}

// InterfaceSpec is one NetworkInterface.N of RunInstances.
type InterfaceSpec struct {
	DeviceIndex         int
	NetworkInterfaceID  string
	SubnetID            string
	GroupIDs            []string
	PrivateIP           string
	SecondaryCount      int
	Description         string
	InterfaceType       string
	DeleteOnTermination *bool
}

// RunInstances launches instances, each with a primary ENI at device index 0.
func (tx *Tx) RunInstances(in RunInput) ([]*Instance, error) {
	if ids, ok, err := tx.replay("RunInstances", in.Idempotency); err != nil || ok {
		if err != nil {
			return nil, err
		}
		return tx.replayedInstances(ids), nil
	}
	typ, ok := instancetypes.Lookup(in.InstanceType)
	if !ok {
		return nil, apierr.InvalidValue("Invalid value '%s' for InstanceType.", in.InstanceType)
	}
	specs, err := tx.planInterfaces(in, typ)
	if err != nil {
		return nil, err
	}
	if err := CheckTags(in.InstanceTags); err != nil {
		return nil, err
	}
	if err := in.MetadataOptions.validate(); err != nil {
		return nil, err
	}
	n, err := tx.launchCount(in, specs)
	if err != nil {
		return nil, err
	}
	var profile *InstanceProfile
	if in.IAMProfile != (ProfileRef{}) {
		if profile, err = tx.resolveProfile(in.IAMProfile); err != nil {
			return nil, err
		}
	}
	reservation := tx.newID("r")
	var out []*Instance
	for i := range n {
		inst, err := tx.launchOne(in, typ, specs, reservation, i)
		if err != nil {
			return nil, err
		}
		if profile != nil {
			c := inst.clone()
			c.IAMProfile = &ProfileAssociation{ID: tx.newID("iip-assoc"), ProfileARN: profile.ARN, ProfileID: profile.ID}
			put(tx, tx.m.instances, c.ID, c)
			inst = c
		}
		out = append(out, inst)
	}
	ids := make([]string, len(out))
	for i, inst := range out {
		ids[i] = inst.ID
	}
	tx.remember("RunInstances", in.Idempotency, ids...)
	return out, nil
}

func (tx *Tx) replayedInstances(ids []string) []*Instance {
	var out []*Instance
	for _, id := range ids {
		if inst, ok := tx.m.instances.get(id); ok {
			out = append(out, inst)
		}
	}
	return out
}

// planInterfaces validates the interface layout and returns it with the
// primary interface first.
func (tx *Tx) planInterfaces(in RunInput, typ instancetypes.Type) ([]InterfaceSpec, error) {
	if len(in.Interfaces) == 0 {
		if in.SubnetID == "" {
			return nil, apierr.Missing("SubnetId")
		}
		return []InterfaceSpec{{SubnetID: in.SubnetID, GroupIDs: in.GroupIDs, PrivateIP: in.PrivateIP}}, nil
	}
	if in.SubnetID != "" || len(in.GroupIDs) > 0 || in.PrivateIP != "" {
		return nil, apierr.Combination("Network interfaces and an instance-level subnet ID, security groups or private IP address may not be specified on the same request")
	}
	var primary *InterfaceSpec
	var rest []InterfaceSpec
	seen := map[int]bool{}
	for _, s := range in.Interfaces {
		if seen[s.DeviceIndex] {
			return nil, apierr.InvalidValue("Each network interface requires a unique device index.")
		}
		seen[s.DeviceIndex] = true
		if s.NetworkInterfaceID != "" && in.MaxCount > 1 {
			return nil, apierr.Combination("An existing network interface may only be attached when launching a single instance")
		}
		if s.InterfaceType == InterfaceTypeTrunk && !typ.Trunking {
			return nil, apierr.New(apierr.CodeUnsupportedOperation, "Instance type %s does not support trunk network interfaces.", typ.Name)
		}
		if s.DeviceIndex == 0 {
			primary = &s
		} else {
			rest = append(rest, s)
		}
	}
	if primary == nil {
		return nil, apierr.InvalidValue("A network interface at device index 0 is required.")
	}
	if len(in.Interfaces) > typ.MaxENIs {
		return nil, apierr.New(apierr.CodeAttachmentLimitExceeded, "Interface count %d exceeds the limit for %s", len(in.Interfaces), typ.Name)
	}
	return append([]InterfaceSpec{*primary}, rest...), nil
}

// launchCount is MaxCount, or fewer (down to MinCount) when the primary
// subnet runs out of addresses, as EC2 does.
func (tx *Tx) launchCount(in RunInput, specs []InterfaceSpec) (int, error) {
	if in.MinCount < 1 || in.MaxCount < in.MinCount {
		return 0, apierr.InvalidValue("Value (%d) for parameter minCount is invalid. Expected a value between 1 and maxCount (%d).", in.MinCount, in.MaxCount)
	}
	if in.MaxCount > 1000 {
		return 0, apierr.New("InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit of 1000 allows.", in.MaxCount)
	}
	if in.MaxCount > 1 && specs[0].PrivateIP != "" {
		return 0, apierr.Combination("A private IP address may only be specified when launching a single instance")
	}
	p := specs[0]
	if p.NetworkInterfaceID != "" {
		return 1, nil
	}
	s, err := tx.lookupSubnet(p.SubnetID)
	if err != nil {
		return 0, err
	}
	free := tx.AvailableIPCount(s) / (1 + p.SecondaryCount)
	if free < in.MinCount {
		return 0, apierr.New(apierr.CodeInsufficientFreeAddresses,
			"There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", s.ID)
	}
	return min(in.MaxCount, free), nil
}

func (tx *Tx) launchOne(in RunInput, typ instancetypes.Type, specs []InterfaceSpec, reservation string, index int) (*Instance, error) {
	inst := &Instance{
		ID:              tx.newID("i"),
		ReservationID:   reservation,
		ImageID:         in.ImageID,
		Type:            typ.Name,
		State:           InstanceRunning,
		LaunchIndex:     index,
		LaunchTime:      tx.now,
		ClientToken:     in.Idempotency.Token,
		Tags:            in.InstanceTags,
		MetadataOptions: in.MetadataOptions.apply(MetadataOptions{}),
	}
	for i, spec := range specs {
		e, err := tx.interfaceFor(spec, in.ENITags)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			inst.SubnetID, inst.VPCID, inst.AvailabilityZone = e.SubnetID, e.VPCID, e.AvailabilityZone
			inst.PrimaryENIID, inst.PrivateIPAddress = e.ID, e.PrivateIPs[0]
			put(tx, tx.m.instances, inst.ID, inst)
		}
		if err := tx.checkAttachable(e, inst, spec.DeviceIndex); err != nil {
			return nil, err
		}
		deleteOnTermination := spec.NetworkInterfaceID == ""
		if spec.DeleteOnTermination != nil {
			deleteOnTermination = *spec.DeleteOnTermination
		}
		c := e.clone()
		c.Attachment = &Attachment{ID: tx.newID("eni-attach"), InstanceID: inst.ID, DeviceIndex: spec.DeviceIndex,
			DeleteOnTermination: deleteOnTermination, AttachTime: tx.now}
		put(tx, tx.m.enis, c.ID, c)
	}
	return inst, nil
}

// interfaceFor returns the existing ENI a spec names or a new (unstored) one.
func (tx *Tx) interfaceFor(spec InterfaceSpec, tags Tags) (*ENI, error) {
	if spec.NetworkInterfaceID != "" {
		return tx.lookupENI(spec.NetworkInterfaceID)
	}
	if spec.SubnetID == "" {
		return nil, apierr.Missing("NetworkInterface.SubnetId")
	}
	return tx.newENI(CreateENIInput{
		SubnetID: spec.SubnetID, Description: spec.Description, GroupIDs: spec.GroupIDs,
		PrivateIP: spec.PrivateIP, SecondaryCount: spec.SecondaryCount, InterfaceType: spec.InterfaceType, Tags: tags,
	})
}

// InstanceStateChange is one TerminateInstances result (EC2's InstanceStateChange).
type InstanceStateChange struct {
	InstanceID string
	Previous   string
	Current    string
}

// TerminateInstances terminates instances: ENIs marked DeleteOnTermination
// (the primary one by default) are deleted, with any trunk associations;
// the others are detached.
func (tx *Tx) TerminateInstances(ids []string) ([]InstanceStateChange, error) {
	var insts []*Instance
	for _, id := range ids {
		inst, err := tx.lookupInstance(id)
		if err != nil {
			return nil, err
		}
		insts = append(insts, inst)
	}
	tx.purgeExpired()
	var out []InstanceStateChange
	for _, inst := range insts {
		out = append(out, InstanceStateChange{InstanceID: inst.ID, Previous: inst.State, Current: InstanceTerminated})
		if inst.State == InstanceTerminated {
			continue
		}
		for _, e := range tx.InstanceInterfaces(inst.ID) {
			tx.releaseInterface(e)
		}
		c := inst.clone()
		c.State, c.TerminatedAt = InstanceTerminated, tx.now
		put(tx, tx.m.instances, c.ID, c)
	}
	return out, nil
}

func (tx *Tx) releaseInterface(e *ENI) {
	if !e.Attachment.DeleteOnTermination {
		c := e.clone()
		c.Attachment = nil
		put(tx, tx.m.enis, c.ID, c)
		return
	}
	for id := range tx.m.assocsByTrunk[e.ID] {
		a, _ := tx.m.assocs.get(id)
		tx.dropAssociation(a)
	}
	remove(tx, tx.m.enis, e.ID)
}

// purgeExpired forgets instances terminated long enough ago to be invisible.
func (tx *Tx) purgeExpired() {
	for _, inst := range tx.m.instances.list() {
		if inst.Expired(tx.now) {
			remove(tx, tx.m.instances, inst.ID)
		}
	}
}
