package iamapi

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type roleResult struct {
	query.Result
	Role roleXML `xml:"Role"`
}

func (a *API) createRole(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	n, err := name(p, "RoleName", 64)
	if err != nil {
		return nil, err
	}
	in := state.RoleInput{Name: n, Description: p.String("Description"), MaxSessionDuration: defaultMaxSessionSecs}
	if in.Path, err = path(p); err != nil {
		return nil, err
	}
	if in.TrustPolicy, err = policyDocument(p, "AssumeRolePolicyDocument", iampolicy.Trust, maxTrustPolicySize); err != nil {
		return nil, err
	}
	if p.Has("MaxSessionDuration") {
		v, _, err := p.Int("MaxSessionDuration")
		if err != nil || v < 3600 || v > 43200 {
			return nil, validation("Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", p.String("MaxSessionDuration"))
		}
		in.MaxSessionDuration = int(v)
	}
	if len(in.Description) > 1000 {
		return nil, validation("Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000")
	}
	if in.Tags, _, err = tags(p); err != nil {
		return nil, err
	}
	var r *state.Role
	err = a.update(ctx, func(tx *state.Tx) error { r, err = tx.CreateRole(in); return err })
	if err != nil {
		return nil, err
	}
	return &roleResult{Role: renderRole(r)}, nil
}

func (a *API) getRole(_ context.Context, req *query.Request) (query.Response, error) {
	n, err := required(req.Params, "RoleName")
	if err != nil {
		return nil, err
	}
	var r *state.Role
	if err := a.store.View(func(tx *state.Tx) (err error) { r, err = tx.Role(n); return err }); err != nil {
		return nil, err
	}
	return &roleResult{Role: renderRole(r)}, nil
}

func (a *API) listRoles(_ context.Context, req *query.Request) (query.Response, error) {
	prefix := req.Params.String("PathPrefix")
	var roles []*state.Role
	_ = a.store.View(func(tx *state.Tx) error {
		for _, r := range tx.Roles() {
			if strings.HasPrefix(r.Path, prefix) {
				roles = append(roles, r)
			}
		}
		return nil
	})
	items, truncated, marker, err := page(req.Params, roles, func(r *state.Role) string { return strings.ToLower(r.Name) })
	if err != nil {
		return nil, err
	}
	out := &struct {
		query.Result
		Roles       []roleXML `xml:"Roles>member"`
		IsTruncated bool      `xml:"IsTruncated"`
		Marker      string    `xml:"Marker,omitempty"`
	}{Roles: []roleXML{}, IsTruncated: truncated, Marker: marker}
	for _, r := range items {
		x := renderRole(r)
		x.Tags = nil // ListRoles leaves tags out, as IAM does
		out.Roles = append(out.Roles, x)
	}
	return out, nil
}

func (a *API) deleteRole(ctx context.Context, req *query.Request) (query.Response, error) {
	n, err := required(req.Params, "RoleName")
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.DeleteRole(n) })
}

func (a *API) updateAssumeRolePolicy(ctx context.Context, req *query.Request) (query.Response, error) {
	n, err := required(req.Params, "RoleName")
	if err != nil {
		return nil, err
	}
	doc, err := policyDocument(req.Params, "PolicyDocument", iampolicy.Trust, maxTrustPolicySize)
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.UpdateAssumeRolePolicy(n, doc) })
}

// Inline policies.

func (a *API) putRolePolicy(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	role, err := required(p, "RoleName")
	if err != nil {
		return nil, err
	}
	pol, err := name(p, "PolicyName", 128)
	if err != nil {
		return nil, err
	}
	doc, err := policyDocument(p, "PolicyDocument", iampolicy.Identity, maxInlineRoleSize)
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error {
		r, err := tx.Role(role)
		if err != nil {
			return err
		}
		// The quota is on all of a role's inline policies together.
		total := len(strings.Join(strings.Fields(doc), ""))
		for n, d := range r.InlinePolicies {
			if n != pol {
				total += len(strings.Join(strings.Fields(d), ""))
			}
		}
		if total > maxInlineRoleSize {
			return apierr.New(codeLimitExceededIAM, "Maximum policy size of %d bytes exceeded for role %s", maxInlineRoleSize, r.Name).WithStatus(409)
		}
		return tx.PutRolePolicy(role, pol, doc)
	})
}

func (a *API) getRolePolicy(_ context.Context, req *query.Request) (query.Response, error) {
	role, err := required(req.Params, "RoleName")
	if err != nil {
		return nil, err
	}
	pol, err := required(req.Params, "PolicyName")
	if err != nil {
		return nil, err
	}
	var doc string
	var r *state.Role
	err = a.store.View(func(tx *state.Tx) error {
		if r, err = tx.Role(role); err != nil {
			return err
		}
		doc, err = tx.RolePolicy(role, pol)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &struct {
		query.Result
		RoleName       string `xml:"RoleName"`
		PolicyName     string `xml:"PolicyName"`
		PolicyDocument string `xml:"PolicyDocument"`
	}{RoleName: r.Name, PolicyName: pol, PolicyDocument: encodeDocument(doc)}, nil
}

func (a *API) listRolePolicies(_ context.Context, req *query.Request) (query.Response, error) {
	role, err := required(req.Params, "RoleName")
	if err != nil {
		return nil, err
	}
	var names []string
	err = a.store.View(func(tx *state.Tx) error {
		r, err := tx.Role(role)
		if err == nil {
			names = slices.Sorted(maps.Keys(r.InlinePolicies))
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	items, truncated, marker, err := page(req.Params, names, func(s string) string { return s })
	if err != nil {
		return nil, err
	}
	return &struct {
		query.Result
		PolicyNames []string `xml:"PolicyNames>member"`
		IsTruncated bool     `xml:"IsTruncated"`
		Marker      string   `xml:"Marker,omitempty"`
	}{PolicyNames: append([]string{}, items...), IsTruncated: truncated, Marker: marker}, nil
}

func (a *API) deleteRolePolicy(ctx context.Context, req *query.Request) (query.Response, error) {
	role, err := required(req.Params, "RoleName")
	if err != nil {
		return nil, err
	}
	pol, err := required(req.Params, "PolicyName")
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.DeleteRolePolicy(role, pol) })
}
