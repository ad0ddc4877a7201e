package state

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// The local IAM: OIDC identity providers, roles with their trust, inline
// and attached policies, managed policies and instance profiles. They live
// in the same file as the VPC, in buckets of their own: a state file
// written before IAM existed loads with them empty. Policy documents are
// validated by the caller (internal/vpc/iamapi, with internal/iampolicy);
// the store checks what IAM checks about entities: existence, duplicates,
// what must be removed before a delete.

// IAM error codes, as IAM answers them.
const (
	CodeNoSuchEntity        = "NoSuchEntity"
	CodeEntityAlreadyExists = "EntityAlreadyExists"
	CodeDeleteConflict      = "DeleteConflict"
	CodeLimitExceeded       = "LimitExceeded"
)

// NoSuchEntity is IAM's 404 for an entity that does not exist.
func NoSuchEntity(format string, args ...any) error {
	return apierr.New(CodeNoSuchEntity, format, args...).WithStatus(http.StatusNotFound)
}

func alreadyExists(format string, args ...any) error {
	return apierr.New(CodeEntityAlreadyExists, format, args...).WithStatus(http.StatusConflict)
}

func deleteConflict(msg string) error {
	return apierr.New(CodeDeleteConflict, "%s", msg).WithStatus(http.StatusConflict)
}

// OIDCProvider is an OpenID Connect identity provider.
type OIDCProvider struct {
	ARN string `json:"arn"`
	// URL is the issuer without its scheme, as IAM stores it
	// ("oidc.example.com/id/X"); tokens' iss must be https://URL (or
	// http://URL for a local issuer, see docs/local-vpc.md).
	URL         string    `json:"url"`
	ClientIDs   []string  `json:"clientIds"`
	Thumbprints []string  `json:"thumbprints,omitempty"`
	Tags        Tags      `json:"tags,omitempty"`
	CreatedAt   time.Time `json:"createdAt"`
}

// Role is an IAM role.
type Role struct {
	Name               string    `json:"name"`
	ID                 string    `json:"id"`
	Path               string    `json:"path"`
	ARN                string    `json:"arn"`
	TrustPolicy        string    `json:"trustPolicy"`
	Description        string    `json:"description,omitempty"`
	MaxSessionDuration int       `json:"maxSessionDuration"`
	CreatedAt          time.Time `json:"createdAt"`
	// InlinePolicies maps policy name → document.
	InlinePolicies map[string]string `json:"inlinePolicies,omitempty"`
	// AttachedPolicies are managed policy ARNs, in attach order.
	AttachedPolicies []string `json:"attachedPolicies,omitempty"`
	Tags             Tags     `json:"tags,omitempty"`
}

// ManagedPolicy is a customer managed policy with its versions.
type ManagedPolicy struct {
	ARN            string          `json:"arn"`
	Name           string          `json:"name"`
	ID             string          `json:"id"`
	Path           string          `json:"path"`
	Description    string          `json:"description,omitempty"`
	DefaultVersion string          `json:"defaultVersion"`
	Versions       []PolicyVersion `json:"versions"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
}

// PolicyVersion is one version of a managed policy's document.
type PolicyVersion struct {
	ID        string    `json:"id"`
	Document  string    `json:"document"`
	CreatedAt time.Time `json:"createdAt"`
}

// Default returns the default version's document.
func (p *ManagedPolicy) Default() string {
	for _, v := range p.Versions {
		if v.ID == p.DefaultVersion {
			return v.Document
		}
	}
	return ""
}

// InstanceProfile holds at most one role, which an instance's metadata
// service hands credentials of.
type InstanceProfile struct {
	Name      string    `json:"name"`
	ID        string    `json:"id"`
	Path      string    `json:"path"`
	ARN       string    `json:"arn"`
	Roles     []string  `json:"roles,omitempty"` // role names
	CreatedAt time.Time `json:"createdAt"`
}

// IAMSecret is a key the local STS signs its session tokens with.
type IAMSecret struct {
	Name string `json:"name"`
	Key  []byte `json:"key"`
}

func (r *Role) clone() *Role {
	c := *r
	c.InlinePolicies = maps.Clone(r.InlinePolicies)
	c.AttachedPolicies = slices.Clone(r.AttachedPolicies)
	c.Tags = maps.Clone(r.Tags)
	return &c
}

// key is the table key of a name IAM compares case-insensitively.
func key(name string) string { return strings.ToLower(name) }

// iamID is an IAM unique id: a type prefix and 17 characters of [A-Z2-7].
func (tx *Tx) iamID(prefix string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	b := make([]byte, 17)
	tx.s.opts.IDs.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

// IAMARN is arn:aws:iam::ACCOUNT:<resource>.
func IAMARN(resource string) string { return "arn:aws:iam::" + AccountID + ":" + resource }

// OIDC providers.

// CreateOIDCProvider registers a provider for url (without scheme).
func (tx *Tx) CreateOIDCProvider(url string, clientIDs, thumbprints []string, tags Tags) (*OIDCProvider, error) {
	arn := IAMARN("oidc-provider/" + url)
	if _, ok := tx.m.oidc.get(arn); ok {
		return nil, alreadyExists("Provider with url https://%s already exists.", url)
	}
	p := &OIDCProvider{ARN: arn, URL: url, ClientIDs: clientIDs, Thumbprints: thumbprints, Tags: tags, CreatedAt: tx.now}
	put(tx, tx.m.oidc, arn, p)
	return p, nil
}

// OIDCProvider returns a provider by ARN, or NoSuchEntity.
func (tx *Tx) OIDCProvider(arn string) (*OIDCProvider, error) {
	p, ok := tx.m.oidc.get(arn)
	if !ok {
		return nil, NoSuchEntity("OpenIDConnect Provider not found for arn %s", arn)
	}
	return p, nil
}

// OIDCProviders lists providers in ARN order.
func (tx *Tx) OIDCProviders() []*OIDCProvider { return tx.m.oidc.list() }

// UpdateOIDCProviderThumbprints replaces a provider's thumbprints.
func (tx *Tx) UpdateOIDCProviderThumbprints(arn string, thumbprints []string) error {
	p, err := tx.OIDCProvider(arn)
	if err != nil {
		return err
	}
	c := *p // the stored provider stays as it was for readers of older snapshots
	c.Thumbprints = append([]string(nil), thumbprints...)
	put(tx, tx.m.oidc, arn, &c)
	return nil
}

// DeleteOIDCProvider removes a provider.
func (tx *Tx) DeleteOIDCProvider(arn string) error {
	if _, err := tx.OIDCProvider(arn); err != nil {
		return err
	}
	remove(tx, tx.m.oidc, arn)
	return nil
}

// Roles.

// RoleInput is CreateRole's request.
type RoleInput struct {
	Name, Path, TrustPolicy, Description string
	MaxSessionDuration                   int
	Tags                                 Tags
}

// CreateRole creates a role.
func (tx *Tx) CreateRole(in RoleInput) (*Role, error) {
	if _, ok := tx.m.roles.get(key(in.Name)); ok {
		return nil, alreadyExists("Role with name %s already exists.", in.Name)
	}
	r := &Role{Name: in.Name, ID: tx.iamID("AROA"), Path: in.Path, ARN: IAMARN("role" + in.Path + in.Name),
		TrustPolicy: in.TrustPolicy, Description: in.Description, MaxSessionDuration: in.MaxSessionDuration,
		CreatedAt: tx.now, Tags: in.Tags}
	put(tx, tx.m.roles, key(r.Name), r)
	return r, nil
}

// Role returns a role by name, or NoSuchEntity.
func (tx *Tx) Role(name string) (*Role, error) {
	r, ok := tx.m.roles.get(key(name))
	if !ok {
		return nil, NoSuchEntity("The role with name %s cannot be found.", name)
	}
	return r, nil
}

// Roles lists roles in name order.
func (tx *Tx) Roles() []*Role { return tx.m.roles.list() }

// DeleteRole removes a role that has no policies and is in no instance profile.
func (tx *Tx) DeleteRole(name string) error {
	r, err := tx.Role(name)
	if err != nil {
		return err
	}
	switch {
	case len(r.InlinePolicies) > 0:
		return deleteConflict("Cannot delete entity, must delete policies first.")
	case len(r.AttachedPolicies) > 0:
		return deleteConflict("Cannot delete entity, must detach all policies first.")
	}
	for _, p := range tx.m.profiles.list() {
		if slices.ContainsFunc(p.Roles, func(n string) bool { return key(n) == key(name) }) {
			return deleteConflict("Cannot delete entity, must remove roles from instance profile first.")
		}
	}
	remove(tx, tx.m.roles, key(name))
	return nil
}

// updateRole stores a changed clone of the named role.
func (tx *Tx) updateRole(name string, fn func(r *Role) error) error {
	r, err := tx.Role(name)
	if err != nil {
		return err
	}
	c := r.clone()
	if err := fn(c); err != nil {
		return err
	}
	put(tx, tx.m.roles, key(c.Name), c)
	return nil
}

// UpdateAssumeRolePolicy replaces a role's trust policy.
func (tx *Tx) UpdateAssumeRolePolicy(name, doc string) error {
	err := tx.updateRole(name, func(r *Role) error { r.TrustPolicy = doc; return nil })
	return err
}

// PutRolePolicy adds or replaces an inline policy.
func (tx *Tx) PutRolePolicy(role, policy, doc string) error {
	err := tx.updateRole(role, func(r *Role) error {
		if r.InlinePolicies == nil {
			r.InlinePolicies = map[string]string{}
		}
		r.InlinePolicies[policy] = doc
		return nil
	})
	return err
}

// RolePolicy returns an inline policy's document.
func (tx *Tx) RolePolicy(role, policy string) (string, error) {
	r, err := tx.Role(role)
	if err != nil {
		return "", err
	}
	doc, ok := r.InlinePolicies[policy]
	if !ok {
		return "", NoSuchEntity("The role policy with name %s cannot be found.", policy)
	}
	return doc, nil
}

// DeleteRolePolicy removes an inline policy.
func (tx *Tx) DeleteRolePolicy(role, policy string) error {
	if _, err := tx.RolePolicy(role, policy); err != nil {
		return err
	}
	err := tx.updateRole(role, func(r *Role) error { delete(r.InlinePolicies, policy); return nil })
	return err
}

// AttachRolePolicy attaches a managed policy (again: no change).
func (tx *Tx) AttachRolePolicy(role, policyARN string) error {
	if _, err := tx.Policy(policyARN); err != nil {
		return err
	}
	err := tx.updateRole(role, func(r *Role) error {
		if !slices.Contains(r.AttachedPolicies, policyARN) {
			r.AttachedPolicies = append(r.AttachedPolicies, policyARN)
		}
		return nil
	})
	return err
}

// DetachRolePolicy detaches a managed policy.
func (tx *Tx) DetachRolePolicy(role, policyARN string) error {
	err := tx.updateRole(role, func(r *Role) error {
		i := slices.Index(r.AttachedPolicies, policyARN)
		if i < 0 {
			return NoSuchEntity("Policy %s was not found.", policyARN)
		}
		r.AttachedPolicies = slices.Delete(r.AttachedPolicies, i, i+1)
		return nil
	})
	return err
}

// Managed policies.

// PolicyInput is CreatePolicy's request.
type PolicyInput struct {
	Name, Path, Description, Document string
}

// CreatePolicy creates a customer managed policy with version v1.
func (tx *Tx) CreatePolicy(in PolicyInput) (*ManagedPolicy, error) {
	arn := IAMARN("policy" + in.Path + in.Name)
	for _, p := range tx.m.policies.list() {
		if key(p.Name) == key(in.Name) {
			return nil, alreadyExists("A policy called %s already exists. Duplicate names are not allowed.", in.Name)
		}
	}
	p := &ManagedPolicy{ARN: arn, Name: in.Name, ID: tx.iamID("ANPA"), Path: in.Path, Description: in.Description,
		DefaultVersion: "v1", Versions: []PolicyVersion{{ID: "v1", Document: in.Document, CreatedAt: tx.now}},
		CreatedAt: tx.now, UpdatedAt: tx.now}
	put(tx, tx.m.policies, arn, p)
	return p, nil
}

// Policy returns a managed policy by ARN, or NoSuchEntity.
func (tx *Tx) Policy(arn string) (*ManagedPolicy, error) {
	p, ok := tx.m.policies.get(arn)
	if !ok {
		return nil, NoSuchEntity("Policy %s was not found.", arn)
	}
	return p, nil
}

// Policies lists managed policies in ARN order.
func (tx *Tx) Policies() []*ManagedPolicy { return tx.m.policies.list() }

// PolicyAttachments counts the roles a managed policy is attached to.
func (tx *Tx) PolicyAttachments(arn string) int {
	n := 0
	for _, r := range tx.m.roles.list() {
		if slices.Contains(r.AttachedPolicies, arn) {
			n++
		}
	}
	return n
}

// DeletePolicy removes a managed policy that is attached to nothing.
func (tx *Tx) DeletePolicy(arn string) error {
	if _, err := tx.Policy(arn); err != nil {
		return err
	}
	if tx.PolicyAttachments(arn) > 0 {
		return deleteConflict("Cannot delete a policy attached to entities.")
	}
	remove(tx, tx.m.policies, arn)
	return nil
}

// Instance profiles.

// CreateInstanceProfile creates an empty instance profile.
func (tx *Tx) CreateInstanceProfile(name, path string) (*InstanceProfile, error) {
	if _, ok := tx.m.profiles.get(key(name)); ok {
		return nil, alreadyExists("Instance Profile %s already exists.", name)
	}
	p := &InstanceProfile{Name: name, ID: tx.iamID("AIPA"), Path: path, ARN: IAMARN("instance-profile" + path + name), CreatedAt: tx.now}
	put(tx, tx.m.profiles, key(name), p)
	return p, nil
}

// InstanceProfile returns a profile by name, or NoSuchEntity.
func (tx *Tx) InstanceProfile(name string) (*InstanceProfile, error) {
	p, ok := tx.m.profiles.get(key(name))
	if !ok {
		return nil, NoSuchEntity("Instance Profile %s cannot be found.", name)
	}
	return p, nil
}

// InstanceProfiles lists profiles in name order.
func (tx *Tx) InstanceProfiles() []*InstanceProfile { return tx.m.profiles.list() }

// DeleteInstanceProfile removes a profile that holds no role.
func (tx *Tx) DeleteInstanceProfile(name string) error {
	p, err := tx.InstanceProfile(name)
	if err != nil {
		return err
	}
	if len(p.Roles) > 0 {
		return deleteConflict("Cannot delete entity, must remove roles from instance profile first.")
	}
	remove(tx, tx.m.profiles, key(name))
	return nil
}

// AddRoleToInstanceProfile puts the role in the profile, which holds one at most.
func (tx *Tx) AddRoleToInstanceProfile(profile, role string) error {
	p, err := tx.InstanceProfile(profile)
	if err != nil {
		return err
	}
	r, err := tx.Role(role)
	if err != nil {
		return err
	}
	if len(p.Roles) > 0 {
		return apierr.New(CodeLimitExceeded, "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1").WithStatus(http.StatusConflict)
	}
	c := *p
	c.Roles = []string{r.Name}
	put(tx, tx.m.profiles, key(p.Name), &c)
	return nil
}

// RemoveRoleFromInstanceProfile takes the role out of the profile.
func (tx *Tx) RemoveRoleFromInstanceProfile(profile, role string) error {
	p, err := tx.InstanceProfile(profile)
	if err != nil {
		return err
	}
	if _, err := tx.Role(role); err != nil {
		return err
	}
	i := slices.IndexFunc(p.Roles, func(n string) bool { return key(n) == key(role) })
	if i < 0 {
		return NoSuchEntity("The role with name %s cannot be found in instance profile %s.", role, profile)
	}
	c := *p
	c.Roles = slices.Delete(slices.Clone(p.Roles), i, i+1)
	put(tx, tx.m.profiles, key(p.Name), &c)
	return nil
}

// InstanceProfileByARN finds a profile by its ARN.
func (tx *Tx) InstanceProfileByARN(arn string) (*InstanceProfile, bool) {
	for _, p := range tx.m.profiles.list() {
		if p.ARN == arn {
			return p, true
		}
	}
	return nil, false
}

// IAMSecret returns the named key, creating it with fresh random bytes
// the first time (only in a writable transaction).
func (tx *Tx) IAMSecret(name string, size int) []byte {
	if s, ok := tx.m.secrets.get(name); ok {
		return s.Key
	}
	k := make([]byte, size)
	tx.s.opts.IDs.Read(k)
	put(tx, tx.m.secrets, name, &IAMSecret{Name: name, Key: k})
	return k
}

// ProfileRef names an instance profile as EC2's IamInstanceProfile does:
// by ARN or by name.
type ProfileRef struct{ ARN, Name string }

func (tx *Tx) resolveProfile(ref ProfileRef) (*InstanceProfile, error) {
	if ref.ARN != "" {
		if p, ok := tx.InstanceProfileByARN(ref.ARN); ok {
			return p, nil
		}
		return nil, apierr.InvalidValue("Value (%s) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN", ref.ARN)
	}
	if p, ok := tx.m.profiles.get(key(ref.Name)); ok {
		return p, nil
	}
	return nil, apierr.InvalidValue("Value (%s) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", ref.Name)
}

// AssociateIamInstanceProfile associates an instance profile with a
// running instance that has none.
func (tx *Tx) AssociateIamInstanceProfile(instanceID string, ref ProfileRef) (*Instance, error) {
	inst, err := tx.lookupInstance(instanceID)
	if err != nil {
		return nil, err
	}
	p, err := tx.resolveProfile(ref)
	if err != nil {
		return nil, err
	}
	if inst.State != InstanceRunning {
		return nil, apierr.New("IncorrectInstanceState", "The instance '%s' is not in a valid state for this operation.", inst.ID)
	}
	if inst.IAMProfile != nil {
		return nil, apierr.New(apierr.CodeIncorrectState, "There is an existing association for instance %s", inst.ID)
	}
	c := inst.clone()
	c.IAMProfile = &ProfileAssociation{ID: tx.newID("iip-assoc"), ProfileARN: p.ARN, ProfileID: p.ID}
	put(tx, tx.m.instances, c.ID, c)
	return c, nil
}
