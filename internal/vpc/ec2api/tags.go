package ec2api

import (
	"context"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

func (a *API) createTags(ctx context.Context, req *query.Request) (query.Response, error) {
	ids := req.Params.List("ResourceId")
	if len(ids) == 0 {
		return nil, apierr.Missing("ResourceId")
	}
	tags, err := req.Params.Tags("Tag")
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, apierr.Missing("Tag")
	}
	m := state.Tags{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.CreateTags(ids, m) })
	return &query.ReturnResponse{Return: true}, err
}

func (a *API) deleteTags(ctx context.Context, req *query.Request) (query.Response, error) {
	ids := req.Params.List("ResourceId")
	if len(ids) == 0 {
		return nil, apierr.Missing("ResourceId")
	}
	tags, err := req.Params.Tags("Tag")
	if err != nil {
		return nil, err
	}
	keys := make([]state.TagKey, len(tags))
	for i, t := range tags {
		keys[i] = state.TagKey{Key: t.Key, Value: t.Value, HasValue: t.HasValue}
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.DeleteTags(ids, keys) })
	return &query.ReturnResponse{Return: true}, err
}

type xmlTagDescription struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

func tagDescriptionFields(t state.TagDescription) query.Fields {
	return fieldMap(nil, map[string][]string{
		"resource-id":   one(t.ResourceID),
		"resource-type": one(t.ResourceType),
		"key":           one(t.Key),
		"value":         one(t.Value),
	})
}

func (a *API) describeTags(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		TagSet    []xmlTagDescription `xml:"tagSet>item"`
		NextToken string              `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		l := listing[state.TagDescription]{
			all: tx.TagDescriptions,
			// Tags sort by resource then key; the pair is the page key.
			key:     func(t state.TagDescription) string { return t.ResourceID + "\x00" + t.Key },
			fields:  tagDescriptionFields,
			minPage: 5, maxPage: 1000,
		}
		page, next, err := l.run(req.Params)
		for _, t := range page {
			resp.TagSet = append(resp.TagSet, xmlTagDescription(t))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}
