package iamapi

import (
	"context"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type policyResult struct {
	query.Result
	Policy policyXML `xml:"Policy"`
}

func (a *API) createPolicy(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	n, err := name(p, "PolicyName", 128)
	if err != nil {
		return nil, err
	}
	in := state.PolicyInput{Name: n, Description: p.String("Description")}
	if in.Path, err = path(p); err != nil {
		return nil, err
	}
	if in.Document, err = policyDocument(p, "PolicyDocument", iampolicy.Identity, maxManagedPolicySize); err != nil {
		return nil, err
	}
	out := &policyResult{}
	err = a.update(ctx, func(tx *state.Tx) error {
		pol, err := tx.CreatePolicy(in)
		if err == nil {
			out.Policy = renderPolicy(tx, pol)
		}
		return err
	})
	return out, err
}

func (a *API) getPolicy(_ context.Context, req *query.Request) (query.Response, error) {
	arn, err := required(req.Params, "PolicyArn")
	if err != nil {
		return nil, err
	}
	out := &policyResult{}
	return out, a.store.View(func(tx *state.Tx) error {
		pol, err := tx.Policy(arn)
		if err == nil {
			out.Policy = renderPolicy(tx, pol)
		}
		return err
	})
}

func (a *API) getPolicyVersion(_ context.Context, req *query.Request) (query.Response, error) {
	arn, err := required(req.Params, "PolicyArn")
	if err != nil {
		return nil, err
	}
	vid, err := required(req.Params, "VersionId")
	if err != nil {
		return nil, err
	}
	type versionXML struct {
		Document         string `xml:"Document"`
		VersionID        string `xml:"VersionId"`
		IsDefaultVersion bool   `xml:"IsDefaultVersion"`
		CreateDate       string `xml:"CreateDate"`
	}
	out := &struct {
		query.Result
		PolicyVersion versionXML `xml:"PolicyVersion"`
	}{}
	return out, a.store.View(func(tx *state.Tx) error {
		pol, err := tx.Policy(arn)
		if err != nil {
			return err
		}
		for _, v := range pol.Versions {
			if v.ID == vid {
				out.PolicyVersion = versionXML{Document: encodeDocument(v.Document), VersionID: v.ID,
					IsDefaultVersion: v.ID == pol.DefaultVersion, CreateDate: query.Time(v.CreatedAt)}
				return nil
			}
		}
		return noSuchVersion(arn, vid)
	})
}

func noSuchVersion(arn, vid string) error {
	return state.NoSuchEntity("Policy %s version %s does not exist or is not attachable.", arn, vid)
}

func (a *API) listPolicies(_ context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	scope, prefix := p.String("Scope"), p.String("PathPrefix")
	onlyAttached, _, err := p.Bool("OnlyAttached")
	if err != nil {
		return nil, err
	}
	var all []policyXML
	_ = a.store.View(func(tx *state.Tx) error {
		// The local IAM holds customer managed policies only: Scope AWS lists none.
		if scope == "AWS" {
			return nil
		}
		for _, pol := range tx.Policies() {
			x := renderPolicy(tx, pol)
			if strings.HasPrefix(pol.Path, prefix) && (!onlyAttached || x.AttachmentCount > 0) {
				all = append(all, x)
			}
		}
		return nil
	})
	items, truncated, marker, err := page(p, all, func(x policyXML) string { return x.Arn })
	if err != nil {
		return nil, err
	}
	return &struct {
		query.Result
		Policies    []policyXML `xml:"Policies>member"`
		IsTruncated bool        `xml:"IsTruncated"`
		Marker      string      `xml:"Marker,omitempty"`
	}{Policies: append([]policyXML{}, items...), IsTruncated: truncated, Marker: marker}, nil
}

func (a *API) deletePolicy(ctx context.Context, req *query.Request) (query.Response, error) {
	arn, err := required(req.Params, "PolicyArn")
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.DeletePolicy(arn) })
}

func (a *API) attachRolePolicy(ctx context.Context, req *query.Request) (query.Response, error) {
	role, arn, err := roleAndPolicy(req.Params)
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.AttachRolePolicy(role, arn) })
}

func (a *API) detachRolePolicy(ctx context.Context, req *query.Request) (query.Response, error) {
	role, arn, err := roleAndPolicy(req.Params)
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.DetachRolePolicy(role, arn) })
}

func roleAndPolicy(p query.Params) (string, string, error) {
	role, err := required(p, "RoleName")
	if err != nil {
		return "", "", err
	}
	arn, err := required(p, "PolicyArn")
	if err != nil {
		return "", "", err
	}
	if !strings.HasPrefix(arn, "arn:") {
		return "", "", validation("Value '%s' at 'policyArn' failed to satisfy constraint: Member must be an ARN", arn)
	}
	return role, arn, nil
}

func (a *API) listAttachedRolePolicies(_ context.Context, req *query.Request) (query.Response, error) {
	role, err := required(req.Params, "RoleName")
	if err != nil {
		return nil, err
	}
	type attachedXML struct {
		PolicyName string `xml:"PolicyName"`
		PolicyArn  string `xml:"PolicyArn"`
	}
	var all []attachedXML
	err = a.store.View(func(tx *state.Tx) error {
		r, err := tx.Role(role)
		if err != nil {
			return err
		}
		for _, arn := range r.AttachedPolicies {
			if pol, err := tx.Policy(arn); err == nil {
				all = append(all, attachedXML{PolicyName: pol.Name, PolicyArn: arn})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(all, func(a, b attachedXML) int { return strings.Compare(a.PolicyArn, b.PolicyArn) })
	items, truncated, marker, err := page(req.Params, all, func(x attachedXML) string { return x.PolicyArn })
	if err != nil {
		return nil, err
	}
	return &struct {
		query.Result
		AttachedPolicies []attachedXML `xml:"AttachedPolicies>member"`
		IsTruncated      bool          `xml:"IsTruncated"`
		Marker           string        `xml:"Marker,omitempty"`
	}{AttachedPolicies: append([]attachedXML{}, items...), IsTruncated: truncated, Marker: marker}, nil
}
