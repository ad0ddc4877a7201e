package state

import (
	"cmp"
	"slices"
	"time"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Network interface permissions: what CreateNetworkInterfacePermission grants. AWS's
// vpc-resource-controller grants INSTANCE-ATTACH on every trunk and branch ENI it creates
// (to the account its instance metadata names) before it attaches or associates it; the local
// VPC has one account, so a permission changes no other answer, but it exists, is listed and
// is deleted as on EC2.

// Permission types CreateNetworkInterfacePermission accepts.
const (
	PermissionInstanceAttach = "INSTANCE-ATTACH"
	PermissionEIPAssociate   = "EIP-ASSOCIATE"
)

// PermissionGranted is the state of every permission here: EC2 grants INSTANCE-ATTACH at once.
const PermissionGranted = "granted"

// ENIPermission is one network interface permission.
type ENIPermission struct {
	ID         string    `json:"id"`
	ENIID      string    `json:"networkInterfaceId"`
	AccountID  string    `json:"awsAccountId"`
	Permission string    `json:"permission"`
	CreatedAt  time.Time `json:"createdAt"`
}

// PermissionInput is CreateNetworkInterfacePermission's request.
type PermissionInput struct {
	ENIID, AccountID, Permission string
}

// CreateNetworkInterfacePermission grants an account a permission on an ENI. EC2 grants one
// account at a time: the same grant again returns the permission that exists (so a retried
// call creates nothing), a grant to another account is refused until that one is deleted.
func (tx *Tx) CreateNetworkInterfacePermission(in PermissionInput) (*ENIPermission, error) {
	if in.Permission != PermissionInstanceAttach && in.Permission != PermissionEIPAssociate {
		return nil, apierr.InvalidValue("Value (%s) for parameter Permission is invalid. Supported values: %s, %s.",
			in.Permission, PermissionInstanceAttach, PermissionEIPAssociate)
	}
	if !isAccountID(in.AccountID) {
		return nil, apierr.InvalidValue("Value (%s) for parameter AwsAccountId is invalid. An account id is 12 digits.", in.AccountID)
	}
	if _, err := tx.lookupENI(in.ENIID); err != nil {
		return nil, err
	}
	for _, p := range tx.ENIPermissions(in.ENIID) {
		if p.Permission != in.Permission {
			continue
		}
		if p.AccountID == in.AccountID {
			return p, nil
		}
		return nil, apierr.New("InvalidPermission.Duplicate",
			"Network interface %s already grants %s to account %s (%s); delete that permission first.", in.ENIID, p.Permission, p.AccountID, p.ID)
	}
	p := &ENIPermission{ID: tx.newID("eni-perm"), ENIID: in.ENIID, AccountID: in.AccountID, Permission: in.Permission, CreatedAt: tx.now}
	put(tx, tx.m.perms, p.ID, p)
	return p, nil
}

// DeleteNetworkInterfacePermission deletes a permission. Without force it refuses while the
// permitted account has the ENI in use (attached, or a branch of a trunk): every instance here
// belongs to AccountID.
func (tx *Tx) DeleteNetworkInterfacePermission(id string, force bool) error {
	p, err := lookup(tx.m.perms, kindPerm, id)
	if err != nil {
		return err
	}
	if e, ok := tx.m.enis.get(p.ENIID); ok && !force && p.AccountID == AccountID && e.InUse() {
		return apierr.New("InvalidNetworkInterface.InUse",
			"The network interface %s is in use by account %s; set Force to delete permission %s anyway.", e.ID, p.AccountID, id)
	}
	remove(tx, tx.m.perms, id)
	return nil
}

// ENIPermission returns a permission by id.
func (tx *Tx) ENIPermission(id string) (*ENIPermission, bool) { return tx.m.perms.get(id) }

// ENIPermissionList lists every permission in id order.
func (tx *Tx) ENIPermissionList() []*ENIPermission { return tx.m.perms.list() }

// ENIPermissions lists the permissions of one ENI in id order.
func (tx *Tx) ENIPermissions(eniID string) []*ENIPermission {
	var out []*ENIPermission
	for id := range tx.m.permsByENI[eniID] {
		if p, ok := tx.m.perms.get(id); ok {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *ENIPermission) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// removeENI deletes an ENI and, as EC2 does, the permissions granted on it.
func (tx *Tx) removeENI(id string) {
	for pid := range tx.m.permsByENI[id] {
		remove(tx, tx.m.perms, pid)
	}
	remove(tx, tx.m.enis, id)
}

func (m *model) reindexPermission(old, cur *ENIPermission) {
	if old != nil {
		removeFrom(m.permsByENI, old.ENIID, old.ID)
	}
	if cur != nil {
		addTo(m.permsByENI, cur.ENIID, cur.ID)
	}
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
