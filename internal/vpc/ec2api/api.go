package ec2api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// API serves EC2 actions from a state store.
type API struct {
	store *state.Store
}

// New returns the handlers for store.
func New(store *state.Store) *API { return &API{store: store} }

// Register adds every implemented action to r.
func (a *API) Register(r *query.Router) {
	for action, h := range map[string]query.Handler{
		"CreateVpc":                          a.createVpc,
		"DescribeVpcs":                       a.describeVpcs,
		"DeleteVpc":                          a.deleteVpc,
		"CreateSubnet":                       a.createSubnet,
		"DescribeSubnets":                    a.describeSubnets,
		"DeleteSubnet":                       a.deleteSubnet,
		"CreateSecurityGroup":                a.createSecurityGroup,
		"DeleteSecurityGroup":                a.deleteSecurityGroup,
		"DescribeSecurityGroups":             a.describeSecurityGroups,
		"AuthorizeSecurityGroupIngress":      a.authorize(false),
		"AuthorizeSecurityGroupEgress":       a.authorize(true),
		"RevokeSecurityGroupIngress":         a.revoke(false),
		"RevokeSecurityGroupEgress":          a.revoke(true),
		"DescribeSecurityGroupRules":         a.describeSecurityGroupRules,
		"RunInstances":                       a.runInstances,
		"DescribeInstances":                  a.describeInstances,
		"TerminateInstances":                 a.terminateInstances,
		"ModifyInstanceMetadataOptions":      a.modifyInstanceMetadataOptions,
		"AssociateIamInstanceProfile":        a.associateIamInstanceProfile,
		"DescribeInstanceTypes":              a.describeInstanceTypes,
		"CreateNetworkInterface":             a.createNetworkInterface,
		"DeleteNetworkInterface":             a.deleteNetworkInterface,
		"DescribeNetworkInterfaces":          a.describeNetworkInterfaces,
		"AttachNetworkInterface":             a.attachNetworkInterface,
		"DetachNetworkInterface":             a.detachNetworkInterface,
		"ModifyNetworkInterfaceAttribute":    a.modifyNetworkInterfaceAttribute,
		"AssignPrivateIpAddresses":           a.assignPrivateIPAddresses,
		"UnassignPrivateIpAddresses":         a.unassignPrivateIPAddresses,
		"CreateTags":                         a.createTags,
		"DeleteTags":                         a.deleteTags,
		"DescribeTags":                       a.describeTags,
		"AssociateTrunkInterface":            a.associateTrunkInterface,
		"DisassociateTrunkInterface":         a.disassociateTrunkInterface,
		"DescribeTrunkInterfaceAssociations": a.describeTrunkInterfaceAssociations,
	} {
		r.Handle(action, h)
	}
}

// mutate runs fn as a transaction, honouring DryRun.
func (a *API) mutate(ctx context.Context, req *query.Request, fn func(tx *state.Tx) error) error {
	dry, err := req.DryRun()
	if err != nil {
		return err
	}
	return a.store.Update(ctx, dry, fn)
}

// read runs fn on a consistent view; DryRun of a describe only checks
// permissions, which always pass here.
func (a *API) read(req *query.Request, fn func(tx *state.Tx) error) error {
	dry, err := req.DryRun()
	if err != nil {
		return err
	}
	if dry {
		return apierr.DryRun()
	}
	return a.store.View(fn)
}

// idempotency extracts ClientToken and hashes the remaining parameters so a
// reused token with different parameters is detected.
func idempotency(req *query.Request) state.Idempotency {
	tok := req.Params.String("ClientToken")
	if tok == "" {
		return state.Idempotency{}
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(req.Params)) {
		switch {
		case k == "ClientToken", k == "DryRun", k == "Action", k == "Version", strings.HasPrefix(k, "X-Amz-"):
			continue
		}
		h.Write([]byte(k + "=" + req.Params[k] + "\n"))
	}
	return state.Idempotency{Token: tok, ParamsHash: hex.EncodeToString(h.Sum(nil))}
}

// tagSpecs returns the tags of TagSpecification.N by resource type, which
// must be one of allowed.
func tagSpecs(req *query.Request, allowed ...string) (map[string]state.Tags, error) {
	specs, err := req.Params.TagSpecifications()
	if err != nil {
		return nil, err
	}
	out := map[string]state.Tags{}
	for _, s := range specs {
		if !slices.Contains(allowed, s.ResourceType) {
			return nil, apierr.InvalidValue("'%s' is not a valid taggable resource type for this operation.", s.ResourceType)
		}
		if out[s.ResourceType] == nil {
			out[s.ResourceType] = state.Tags{}
		}
		for _, t := range s.Tags {
			out[s.ResourceType][t.Key] = t.Value
		}
	}
	return out, nil
}

// int32p is the int32 of an optional integer parameter.
func optionalInt32(p query.Params, name string) (*int32, error) {
	v, ok, err := p.Int(name)
	if err != nil || !ok {
		return nil, err
	}
	if v < -2147483648 || v > 2147483647 {
		return nil, apierr.InvalidValue("Value (%d) for parameter %s is out of range.", v, name)
	}
	n := int32(v)
	return &n, nil
}

// requiredInt returns an integer parameter that must be present.
func requiredInt(p query.Params, name string, lo, hi int64) (int, error) {
	if !p.Has(name) {
		return 0, apierr.Missing(name)
	}
	v, err := p.IntIn(name, 0, lo, hi)
	return int(v), err
}
