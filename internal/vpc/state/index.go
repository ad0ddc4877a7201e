package state

import "strings"

// model is the in-memory state: the tables plus secondary indexes kept in
// step by the tables' reindex hooks, so undoing a write also undoes its
// index changes.
type model struct {
	vpcs      *table[VPC]
	subnets   *table[Subnet]
	groups    *table[SecurityGroup]
	instances *table[Instance]
	enis      *table[ENI]
	assocs    *table[TrunkAssociation]
	tokens    *table[ClientToken]
	perms     *table[ENIPermission]

	// IAM: no secondary indexes, the tables are small.
	oidc     *table[OIDCProvider]
	roles    *table[Role]
	policies *table[ManagedPolicy]
	profiles *table[InstanceProfile]
	secrets  *table[IAMSecret]

	ipOwner        map[string]map[string]string // subnet → ip → eni
	macOwner       map[string]string            // mac → eni
	enisByInstance map[string]set               // instance → enis
	enisBySubnet   map[string]set               // subnet → enis (describe filter subnet-id)
	enisByTag      map[string]set               // tagKey(key, value) → enis (describe filter tag:KEY)
	enisByType     map[string]set               // interface type → enis (describe filter interface-type)
	enisByGroup    map[string]set               // security group → enis using it
	ruleRefs       map[string]set               // security group → groups whose rules reference it
	subnetsByVPC   map[string]set
	groupsByVPC    map[string]set
	groupByName    map[string]string // vpc/name → group
	assocsByTrunk  map[string]set
	vlanOwner      map[string]map[int]string // trunk → vlan → association
	ruleOwner      map[string]string         // sgr- id → group
	permsByENI     map[string]set            // eni → its permissions
}

type set map[string]struct{}

func (s set) ids() []string {
	out := make([]string, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	return out
}

func addTo(m map[string]set, key, member string) {
	s := m[key]
	if s == nil {
		s = set{}
		m[key] = s
	}
	s[member] = struct{}{}
}

func removeFrom(m map[string]set, key, member string) {
	if s := m[key]; s != nil {
		delete(s, member)
		if len(s) == 0 {
			delete(m, key)
		}
	}
}

func newModel() *model {
	m := &model{
		vpcs:           newTable[VPC]("vpcs"),
		subnets:        newTable[Subnet]("subnets"),
		groups:         newTable[SecurityGroup]("securityGroups"),
		instances:      newTable[Instance]("instances"),
		enis:           newTable[ENI]("networkInterfaces"),
		assocs:         newTable[TrunkAssociation]("trunkAssociations"),
		tokens:         newTable[ClientToken]("clientTokens"),
		perms:          newTable[ENIPermission]("networkInterfacePermissions"),
		oidc:           newTable[OIDCProvider]("iamOIDCProviders"),
		roles:          newTable[Role]("iamRoles"),
		policies:       newTable[ManagedPolicy]("iamPolicies"),
		profiles:       newTable[InstanceProfile]("iamInstanceProfiles"),
		secrets:        newTable[IAMSecret]("iamSecrets"),
		ipOwner:        map[string]map[string]string{},
		macOwner:       map[string]string{},
		enisByInstance: map[string]set{},
		enisBySubnet:   map[string]set{},
		enisByTag:      map[string]set{},
		enisByType:     map[string]set{},
		enisByGroup:    map[string]set{},
		ruleRefs:       map[string]set{},
		subnetsByVPC:   map[string]set{},
		groupsByVPC:    map[string]set{},
		groupByName:    map[string]string{},
		assocsByTrunk:  map[string]set{},
		vlanOwner:      map[string]map[int]string{},
		ruleOwner:      map[string]string{},
		permsByENI:     map[string]set{},
	}
	m.subnets.reindex = m.reindexSubnet
	m.groups.reindex = m.reindexGroup
	m.enis.reindex = m.reindexENI
	m.assocs.reindex = m.reindexAssoc
	m.perms.reindex = m.reindexPermission
	return m
}

func (m *model) tables() []anyTable {
	return []anyTable{m.vpcs, m.subnets, m.groups, m.instances, m.enis, m.assocs, m.tokens, m.perms,
		m.oidc, m.roles, m.policies, m.profiles, m.secrets}
}

// identityOnly reports whether every change is to an IAM table, which the
// data path does not build anything from.
func identityOnly(changes []Change) bool {
	for _, c := range changes {
		if !strings.HasPrefix(c.Kind, "iam") {
			return false
		}
	}
	return true
}

func (m *model) table(kind string) anyTable {
	for _, t := range m.tables() {
		if t.name() == kind {
			return t
		}
	}
	return nil
}

func (m *model) reindexSubnet(old, cur *Subnet) {
	if old != nil {
		removeFrom(m.subnetsByVPC, old.VPCID, old.ID)
	}
	if cur != nil {
		addTo(m.subnetsByVPC, cur.VPCID, cur.ID)
	}
}

func (m *model) reindexGroup(old, cur *SecurityGroup) {
	if old != nil {
		removeFrom(m.groupsByVPC, old.VPCID, old.ID)
		delete(m.groupByName, old.VPCID+"/"+old.Name)
		for _, r := range old.Rules {
			delete(m.ruleOwner, r.ID)
			if r.GroupID != "" {
				removeFrom(m.ruleRefs, r.GroupID, old.ID)
			}
		}
	}
	if cur != nil {
		addTo(m.groupsByVPC, cur.VPCID, cur.ID)
		m.groupByName[cur.VPCID+"/"+cur.Name] = cur.ID
		for _, r := range cur.Rules {
			m.ruleOwner[r.ID] = cur.ID
			if r.GroupID != "" {
				addTo(m.ruleRefs, r.GroupID, cur.ID)
			}
		}
	}
}

func (m *model) reindexENI(old, cur *ENI) {
	if old != nil {
		for _, ip := range old.PrivateIPs {
			if owners := m.ipOwner[old.SubnetID]; owners[ip] == old.ID {
				delete(owners, ip)
			}
		}
		delete(m.macOwner, old.MAC)
		for _, g := range old.Groups {
			removeFrom(m.enisByGroup, g, old.ID)
		}
		if old.Attachment != nil {
			removeFrom(m.enisByInstance, old.Attachment.InstanceID, old.ID)
		}
		removeFrom(m.enisBySubnet, old.SubnetID, old.ID)
		removeFrom(m.enisByType, old.InterfaceType, old.ID)
		for k, v := range old.Tags {
			removeFrom(m.enisByTag, tagKey(k, v), old.ID)
		}
	}
	if cur != nil {
		owners := m.ipOwner[cur.SubnetID]
		if owners == nil {
			owners = map[string]string{}
			m.ipOwner[cur.SubnetID] = owners
		}
		for _, ip := range cur.PrivateIPs {
			owners[ip] = cur.ID
		}
		m.macOwner[cur.MAC] = cur.ID
		for _, g := range cur.Groups {
			addTo(m.enisByGroup, g, cur.ID)
		}
		if cur.Attachment != nil {
			addTo(m.enisByInstance, cur.Attachment.InstanceID, cur.ID)
		}
		addTo(m.enisBySubnet, cur.SubnetID, cur.ID)
		addTo(m.enisByType, cur.InterfaceType, cur.ID)
		for k, v := range cur.Tags {
			addTo(m.enisByTag, tagKey(k, v), cur.ID)
		}
	}
}

// tagKey is the enisByTag key of one tag; NUL cannot occur in a tag key.
func tagKey(key, value string) string { return key + "\x00" + value }

func (m *model) reindexAssoc(old, cur *TrunkAssociation) {
	if old != nil {
		removeFrom(m.assocsByTrunk, old.TrunkID, old.ID)
		delete(m.vlanOwner[old.TrunkID], old.VlanID)
	}
	if cur != nil {
		addTo(m.assocsByTrunk, cur.TrunkID, cur.ID)
		if m.vlanOwner[cur.TrunkID] == nil {
			m.vlanOwner[cur.TrunkID] = map[int]string{}
		}
		m.vlanOwner[cur.TrunkID][cur.VlanID] = cur.ID
	}
}
