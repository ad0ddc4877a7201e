package state

import (
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// idKind ties an id prefix to the error codes EC2 uses for it.
type idKind struct {
	prefix    string
	malformed string
	notFound  string
	noun      string
}

var (
	kindVPC      = idKind{"vpc", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound", "vpc ID"}
	kindSubnet   = idKind{"subnet", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound", "subnet ID"}
	kindGroup    = idKind{"sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", "security group"}
	kindRule     = idKind{"sgr", "InvalidSecurityGroupRuleId.Malformed", "InvalidSecurityGroupRuleId.NotFound", "security group rule ID"}
	kindInstance = idKind{"i", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound", "instance ID"}
	kindENI      = idKind{"eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", "networkInterface ID"}
	kindAttach   = idKind{"eni-attach", "InvalidAttachmentID.Malformed", "InvalidAttachmentID.NotFound", "attachment ID"}
	kindAssoc    = idKind{"trunk-assoc", "InvalidAssociationID.Malformed", "InvalidAssociationID.NotFound", "association ID"}
	// EC2's reference names no codes of its own for permissions; these follow the ENI's.
	kindPerm = idKind{"eni-perm", "InvalidNetworkInterfacePermissionID.Malformed", "InvalidNetworkInterfacePermissionID.NotFound", "network interface permission ID"}
)

// wellFormed accepts prefix-XXXXXXXX and prefix-XXXXXXXXXXXXXXXXX (8 or 17
// lowercase hex digits), the two id lengths EC2 has used.
func wellFormed(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"-")
	if !ok || (len(rest) != 8 && len(rest) != 17) {
		return false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (k idKind) check(id string) error {
	if !wellFormed(k.prefix, id) {
		return apierr.New(k.malformed, "Invalid id: %q (expecting %q)", id, k.prefix+"-...")
	}
	return nil
}

func (k idKind) missing(id string) *apierr.Error {
	return apierr.New(k.notFound, "The %s '%s' does not exist", k.noun, id)
}

// CheckID validates an id's shape for the resource its prefix names; the
// describe handlers use it to reject malformed ids before looking them up.
func CheckID(prefix, id string) error {
	for _, k := range []idKind{kindVPC, kindSubnet, kindGroup, kindRule, kindInstance, kindENI, kindAttach, kindAssoc, kindPerm} {
		if k.prefix == prefix {
			return k.check(id)
		}
	}
	return apierr.InvalidValue("Invalid id: %q", id)
}

// NotFound returns the NotFound error for an id of the given prefix.
func NotFound(prefix, id string) error {
	for _, k := range []idKind{kindVPC, kindSubnet, kindGroup, kindRule, kindInstance, kindENI, kindAttach, kindAssoc, kindPerm} {
		if k.prefix == prefix {
			return k.missing(id)
		}
	}
	return apierr.InvalidValue("Invalid id: %q", id)
}

func lookup[T any](t *table[T], k idKind, id string) (*T, error) {
	if err := k.check(id); err != nil {
		return nil, err
	}
	v, ok := t.get(id)
	if !ok {
		return nil, k.missing(id)
	}
	return v, nil
}

func (tx *Tx) lookupVPC(id string) (*VPC, error)       { return lookup(tx.m.vpcs, kindVPC, id) }
func (tx *Tx) lookupSubnet(id string) (*Subnet, error) { return lookup(tx.m.subnets, kindSubnet, id) }
func (tx *Tx) lookupENI(id string) (*ENI, error)       { return lookup(tx.m.enis, kindENI, id) }
func (tx *Tx) lookupGroup(id string) (*SecurityGroup, error) {
	return lookup(tx.m.groups, kindGroup, id)
}

func (tx *Tx) lookupAssoc(id string) (*TrunkAssociation, error) {
	return lookup(tx.m.assocs, kindAssoc, id)
}

// lookupInstance hides instances whose termination has expired, as EC2 does.
func (tx *Tx) lookupInstance(id string) (*Instance, error) {
	inst, err := lookup(tx.m.instances, kindInstance, id)
	if err != nil {
		return nil, err
	}
	if inst.Expired(tx.now) {
		return nil, kindInstance.missing(id)
	}
	return inst, nil
}
