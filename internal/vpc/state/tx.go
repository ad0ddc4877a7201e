package state

import (
	"slices"
	"time"

	"github.com/podsg/podsg/internal/vpc/idgen"
)

// Tx is a transaction over the model. Read methods work in every Tx; the
// mutating methods (the EC2 actions) only in Store.Update.
type Tx struct {
	s        *Store
	m        *model
	now      time.Time
	readOnly bool
	undo     []func()
	dirty    map[Change]struct{}
	changes  []Change
}

// Change names one object a transaction wrote (or deleted).
type Change struct {
	Kind string
	ID   string
}

func (tx *Tx) mustWrite() {
	if tx.readOnly {
		// A handler called a mutation from View: a programming error the
		// server's recovery turns into InternalError.
		panic("state: mutation in a read-only transaction")
	}
}

func (tx *Tx) markDirty(kind, id string) {
	c := Change{Kind: kind, ID: id}
	if _, ok := tx.dirty[c]; ok {
		return
	}
	tx.dirty[c] = struct{}{}
	tx.changes = append(tx.changes, c)
}

func (tx *Tx) rollback() {
	for _, u := range slices.Backward(tx.undo) {
		u()
	}
	tx.undo, tx.changes = nil, nil
}

// Now is the transaction's clock reading.
func (tx *Tx) Now() time.Time { return tx.now }

// Region is the store's region.
func (tx *Tx) Region() string { return tx.s.opts.Region }

func (tx *Tx) newID(prefix string) string { return idgen.ID(tx.s.opts.IDs, prefix) }

// Read accessors. The returned objects are shared and must not be modified.

// VPC returns a VPC by id.
func (tx *Tx) VPC(id string) (*VPC, bool) { return tx.m.vpcs.get(id) }

// Subnet returns a subnet by id.
func (tx *Tx) Subnet(id string) (*Subnet, bool) { return tx.m.subnets.get(id) }

// SecurityGroup returns a group by id.
func (tx *Tx) SecurityGroup(id string) (*SecurityGroup, bool) { return tx.m.groups.get(id) }

// Instance returns an instance by id.
func (tx *Tx) Instance(id string) (*Instance, bool) { return tx.m.instances.get(id) }

// NetworkInterface returns an ENI by id.
func (tx *Tx) NetworkInterface(id string) (*ENI, bool) { return tx.m.enis.get(id) }

// TrunkAssociation returns an association by id.
func (tx *Tx) TrunkAssociation(id string) (*TrunkAssociation, bool) { return tx.m.assocs.get(id) }

// VPCs lists VPCs in id order.
func (tx *Tx) VPCs() []*VPC { return tx.m.vpcs.list() }

// Subnets lists subnets in id order.
func (tx *Tx) Subnets() []*Subnet { return tx.m.subnets.list() }

// SecurityGroups lists groups in id order.
func (tx *Tx) SecurityGroups() []*SecurityGroup { return tx.m.groups.list() }

// Instances lists instances in id order.
func (tx *Tx) Instances() []*Instance { return tx.m.instances.list() }

// NetworkInterfaces lists ENIs in id order.
func (tx *Tx) NetworkInterfaces() []*ENI { return tx.m.enis.list() }

// NetworkInterfaceIDs returns every ENI id in order. The slice is the table's own: read it
// inside the transaction only, and never modify it.
func (tx *Tx) NetworkInterfaceIDs() []string { return tx.m.enis.sorted }

// ENIIndex names a secondary index of ENIs that DescribeNetworkInterfaces can narrow by.
type ENIIndex int

// The ENI indexes: by attached instance, by subnet, by tag, by interface type.
const (
	ENIsByInstance ENIIndex = iota
	ENIsBySubnet
	ENIsByTag
	ENIsByType
)

// ENIsBy returns how many ENIs have value in an index field (for ENIsByTag, the tag key and
// its value), and a function listing their ids in no order. A describe call with a filter on
// that field reads these instead of every ENI, and counts first to pick the narrowest filter.
func (tx *Tx) ENIsBy(index ENIIndex, key, value string) (int, func() []string) {
	var s set
	switch index {
	case ENIsByInstance:
		s = tx.m.enisByInstance[value]
	case ENIsBySubnet:
		s = tx.m.enisBySubnet[value]
	case ENIsByTag:
		s = tx.m.enisByTag[tagKey(key, value)]
	case ENIsByType:
		s = tx.m.enisByType[value]
	}
	return len(s), s.ids
}

// AssociationsOfTrunk returns how many associations a trunk has, and a function listing
// their ids in no order.
func (tx *Tx) AssociationsOfTrunk(trunkID string) (int, func() []string) {
	s := tx.m.assocsByTrunk[trunkID]
	return len(s), s.ids
}

// InstanceIDs returns every instance id in order (terminated ones too). The slice is the
// table's own: read it inside the transaction only, and never modify it.
func (tx *Tx) InstanceIDs() []string { return tx.m.instances.sorted }

// TrunkAssociationIDs returns every association id in order. The slice is the table's own:
// read it inside the transaction only, and never modify it.
func (tx *Tx) TrunkAssociationIDs() []string { return tx.m.assocs.sorted }

// TrunkAssociations lists associations in id order.
func (tx *Tx) TrunkAssociations() []*TrunkAssociation { return tx.m.assocs.list() }

// InstanceInterfaces returns the ENIs attached to an instance by device index.
func (tx *Tx) InstanceInterfaces(instanceID string) []*ENI {
	var out []*ENI
	for id := range tx.m.enisByInstance[instanceID] {
		if e, ok := tx.m.enis.get(id); ok {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b *ENI) int { return a.Attachment.DeviceIndex - b.Attachment.DeviceIndex })
	return out
}

// AvailableIPCount is the subnet's free address count as EC2 reports it.
func (tx *Tx) AvailableIPCount(s *Subnet) int {
	size := subnetSize(s.CIDR)
	return size - reservedAddresses - len(tx.m.ipOwner[s.ID])
}
