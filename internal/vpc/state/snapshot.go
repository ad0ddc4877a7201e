package state

// Snapshot is the read-only view an Applier gets. It is valid only during
// the Apply call; the objects it returns must not be modified.
type Snapshot struct {
	m *model
	// changes is nil for a full resync (at Open).
	changes []Change
}

// Changes lists the objects the triggering transaction wrote or deleted;
// nil means "everything may have changed".
func (s *Snapshot) Changes() []Change { return s.changes }

// VPCs lists VPCs in id order.
func (s *Snapshot) VPCs() []*VPC { return s.m.vpcs.list() }

// Subnets lists subnets in id order.
func (s *Snapshot) Subnets() []*Subnet { return s.m.subnets.list() }

// SecurityGroups lists groups in id order.
func (s *Snapshot) SecurityGroups() []*SecurityGroup { return s.m.groups.list() }

// Instances lists instances in id order.
func (s *Snapshot) Instances() []*Instance { return s.m.instances.list() }

// NetworkInterfaces lists ENIs in id order.
func (s *Snapshot) NetworkInterfaces() []*ENI { return s.m.enis.list() }

// TrunkAssociations lists trunk associations in id order.
func (s *Snapshot) TrunkAssociations() []*TrunkAssociation { return s.m.assocs.list() }
