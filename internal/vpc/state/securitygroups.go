package state

import (
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// CreateSecurityGroup creates a group with EC2's default allow-all egress rule.
func (tx *Tx) CreateSecurityGroup(vpcID, name, description string, tags Tags) (*SecurityGroup, error) {
	if _, err := tx.lookupVPC(vpcID); err != nil {
		return nil, err
	}
	if err := checkGroupText("GroupName", "security group name", name); err != nil {
		return nil, err
	}
	if err := checkGroupText("GroupDescription", "security group description", description); err != nil {
		return nil, err
	}
	switch {
	case strings.HasPrefix(strings.ToLower(name), "sg-"):
		return nil, apierr.InvalidValue("Value (%s) for parameter GroupName is invalid. Group names may not be in the format sg-*.", name)
	case name == "default":
		return nil, apierr.New("InvalidGroup.Reserved", "The security group 'default' is reserved")
	}
	if _, dup := tx.m.groupByName[vpcID+"/"+name]; dup {
		return nil, apierr.New("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, vpcID)
	}
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	g := &SecurityGroup{
		ID:          tx.newID("sg"),
		VPCID:       vpcID,
		Name:        name,
		Description: description,
		Rules:       []Rule{tx.defaultEgressRule()},
		Tags:        tags,
	}
	put(tx, tx.m.groups, g.ID, g)
	return g, nil
}

// ResolveGroup finds a group by id, or by name when id is empty. A name is
// looked up in vpcID, or across all VPCs when vpcID is empty and the name
// is unambiguous (the emulator has no default VPC to scope it).
func (tx *Tx) ResolveGroup(id, name, vpcID string) (*SecurityGroup, error) {
	if id != "" {
		return tx.lookupGroup(id)
	}
	if vpcID != "" {
		if gid, ok := tx.m.groupByName[vpcID+"/"+name]; ok {
			g, _ := tx.m.groups.get(gid)
			return g, nil
		}
		return nil, apierr.New("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", name, vpcID)
	}
	var found *SecurityGroup
	for _, g := range tx.m.groups.rows {
		if g.Name == name {
			if found != nil {
				return nil, apierr.InvalidValue("The security group name '%s' is ambiguous; use a group id", name)
			}
			found = g
		}
	}
	if found == nil {
		return nil, apierr.New("InvalidGroup.NotFound", "The security group '%s' does not exist", name)
	}
	return found, nil
}

// DeleteSecurityGroup deletes a group that nothing uses.
func (tx *Tx) DeleteSecurityGroup(id, name string) (*SecurityGroup, error) {
	g, err := tx.ResolveGroup(id, name, "")
	if err != nil {
		return nil, err
	}
	if g.Name == "default" {
		return nil, apierr.New("CannotDelete", "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", g.ID)
	}
	if len(tx.m.enisByGroup[g.ID]) > 0 {
		return nil, apierr.Dependency("resource %s has a dependent object", g.ID)
	}
	for ref := range tx.m.ruleRefs[g.ID] {
		if ref != g.ID {
			return nil, apierr.Dependency("resource %s has a dependent object", g.ID)
		}
	}
	remove(tx, tx.m.groups, g.ID)
	return g, nil
}

// resolveGroups validates the groups of an ENI or instance: they exist,
// belong to the VPC and respect the per-interface quota. With none, the
// VPC's default group applies.
func (tx *Tx) resolveGroups(ids []string, vpcID, subnetID string) ([]string, error) {
	if len(ids) == 0 {
		v, _ := tx.m.vpcs.get(vpcID)
		return []string{v.DefaultGroupID}, nil
	}
	var out []string
	seen := map[string]bool{}
	for _, id := range ids {
		g, err := tx.lookupGroup(id)
		if err != nil {
			return nil, err
		}
		if g.VPCID != vpcID {
			return nil, apierr.New(apierr.CodeInvalidParameter, "Security group %s and subnet %s belong to different networks.", id, subnetID)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	if limit := tx.s.opts.Limits.SecurityGroupsPerInterface; len(out) > limit {
		return nil, apierr.New(apierr.CodeSecurityGroupsPerENIExceeded, "The maximum number of security groups per interface (%d) has been reached.", limit)
	}
	return out, nil
}
