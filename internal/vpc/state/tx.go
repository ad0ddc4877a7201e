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
