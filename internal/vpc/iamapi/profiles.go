package iamapi

import (
	"context"
	"strings"

	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type profileResult struct {
	query.Result
	InstanceProfile profileXML `xml:"InstanceProfile"`
}

func (a *API) createInstanceProfile(ctx context.Context, req *query.Request) (query.Response, error) {
	n, err := name(req.Params, "InstanceProfileName", 128)
	if err != nil {
		return nil, err
	}
	pth, err := path(req.Params)
	if err != nil {
		return nil, err
	}
	out := &profileResult{}
	return out, a.update(ctx, func(tx *state.Tx) error {
		p, err := tx.CreateInstanceProfile(n, pth)
		if err == nil {
			out.InstanceProfile = renderProfile(tx, p)
		}
		return err
	})
}

func (a *API) getInstanceProfile(_ context.Context, req *query.Request) (query.Response, error) {
	n, err := required(req.Params, "InstanceProfileName")
	if err != nil {
		return nil, err
	}
	out := &profileResult{}
	return out, a.store.View(func(tx *state.Tx) error {
		p, err := tx.InstanceProfile(n)
		if err == nil {
			out.InstanceProfile = renderProfile(tx, p)
		}
		return err
	})
}

func (a *API) listInstanceProfiles(_ context.Context, req *query.Request) (query.Response, error) {
	prefix := req.Params.String("PathPrefix")
	var all []profileXML
	_ = a.store.View(func(tx *state.Tx) error {
		for _, p := range tx.InstanceProfiles() {
			if strings.HasPrefix(p.Path, prefix) {
				all = append(all, renderProfile(tx, p))
			}
		}
		return nil
	})
	items, truncated, marker, err := page(req.Params, all, func(x profileXML) string { return strings.ToLower(x.InstanceProfileName) })
	if err != nil {
		return nil, err
	}
	return &struct {
		query.Result
		InstanceProfiles []profileXML `xml:"InstanceProfiles>member"`
		IsTruncated      bool         `xml:"IsTruncated"`
		Marker           string       `xml:"Marker,omitempty"`
	}{InstanceProfiles: append([]profileXML{}, items...), IsTruncated: truncated, Marker: marker}, nil
}

func (a *API) deleteInstanceProfile(ctx context.Context, req *query.Request) (query.Response, error) {
	n, err := required(req.Params, "InstanceProfileName")
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.DeleteInstanceProfile(n) })
}

func profileAndRole(p query.Params) (string, string, error) {
	prof, err := required(p, "InstanceProfileName")
	if err != nil {
		return "", "", err
	}
	role, err := required(p, "RoleName")
	return prof, role, err
}

func (a *API) addRoleToInstanceProfile(ctx context.Context, req *query.Request) (query.Response, error) {
	prof, role, err := profileAndRole(req.Params)
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.AddRoleToInstanceProfile(prof, role) })
}

func (a *API) removeRoleFromInstanceProfile(ctx context.Context, req *query.Request) (query.Response, error) {
	prof, role, err := profileAndRole(req.Params)
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.RemoveRoleFromInstanceProfile(prof, role) })
}
