package iamapi

import (
	"context"
	"encoding/hex"
	"net/url"
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// providerURL checks CreateOpenIDConnectProvider's Url and returns it as
// IAM stores it: without the scheme. AWS takes https only; the local IAM
// also takes http, for an issuer served on loopback without TLS.
func providerURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || len(raw) > 255 {
		return "", apierr.New(CodeInvalidInput, "Invalid URL: %s. The URL must begin with https:// and name a host, without query or fragment.", raw)
	}
	return strings.TrimSuffix(u.Host+u.Path, "/"), nil
}

// thumbprints reads and checks a ThumbprintList (at most 5 SHA-1s in hex), lower-cased as
// IAM stores them.
func thumbprints(p query.Params) ([]string, error) {
	thumbs := p.List("ThumbprintList.member")
	if len(thumbs) > 5 {
		return nil, apierr.New(CodeInvalidInput, "Thumbprint list must contain at most 5 entries.")
	}
	for i, t := range thumbs {
		if _, err := hex.DecodeString(t); err != nil || len(t) != 40 {
			return nil, validation("Value '%s' at 'thumbprintList' failed to satisfy constraint: Member must have length 40 and be hexadecimal", t)
		}
		thumbs[i] = strings.ToLower(t)
	}
	return thumbs, nil
}

func (a *API) createOIDCProvider(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	raw, err := required(p, "Url")
	if err != nil {
		return nil, err
	}
	u, err := providerURL(raw)
	if err != nil {
		return nil, err
	}
	clients := p.List("ClientIDList.member")
	for _, c := range clients {
		if c == "" || len(c) > 255 {
			return nil, validation("Value '%s' at 'clientIDList' failed to satisfy constraint: Member must have length between 1 and 255", c)
		}
	}
	thumbs, err := thumbprints(p)
	if err != nil {
		return nil, err
	}
	tg, tl, err := tags(p)
	if err != nil {
		return nil, err
	}
	var prov *state.OIDCProvider
	err = a.update(ctx, func(tx *state.Tx) error {
		prov, err = tx.CreateOIDCProvider(u, clients, thumbs, tg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &struct {
		query.Result
		Arn  string   `xml:"OpenIDConnectProviderArn"`
		Tags []tagXML `xml:"Tags>member,omitempty"`
	}{Arn: prov.ARN, Tags: tl}, nil
}

func (a *API) getOIDCProvider(_ context.Context, req *query.Request) (query.Response, error) {
	arn, err := required(req.Params, "OpenIDConnectProviderArn")
	if err != nil {
		return nil, err
	}
	var prov *state.OIDCProvider
	if err := a.store.View(func(tx *state.Tx) (err error) { prov, err = tx.OIDCProvider(arn); return err }); err != nil {
		return nil, err
	}
	return &struct {
		query.Result
		URL         string   `xml:"Url"`
		ClientIDs   []string `xml:"ClientIDList>member"`
		Thumbprints []string `xml:"ThumbprintList>member"`
		CreateDate  string   `xml:"CreateDate"`
		Tags        []tagXML `xml:"Tags>member,omitempty"`
	}{URL: prov.URL, ClientIDs: prov.ClientIDs, Thumbprints: prov.Thumbprints, CreateDate: query.Time(prov.CreatedAt), Tags: tagList(prov.Tags)}, nil
}

func (a *API) listOIDCProviders(context.Context, *query.Request) (query.Response, error) {
	type entry struct {
		Arn string `xml:"Arn"`
	}
	out := &struct {
		query.Result
		List []entry `xml:"OpenIDConnectProviderList>member"`
	}{List: []entry{}}
	_ = a.store.View(func(tx *state.Tx) error {
		for _, p := range tx.OIDCProviders() {
			out.List = append(out.List, entry{p.ARN})
		}
		return nil
	})
	return out, nil
}

func (a *API) deleteOIDCProvider(ctx context.Context, req *query.Request) (query.Response, error) {
	arn, err := required(req.Params, "OpenIDConnectProviderArn")
	if err != nil {
		return nil, err
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.DeleteOIDCProvider(arn) })
}

// updateOIDCProviderThumbprint replaces a provider's thumbprint list, as IAM's
// UpdateOpenIDConnectProviderThumbprint does when an issuer's certificate changes: the whole
// list, which must not be empty.
func (a *API) updateOIDCProviderThumbprint(ctx context.Context, req *query.Request) (query.Response, error) {
	arn, err := required(req.Params, "OpenIDConnectProviderArn")
	if err != nil {
		return nil, err
	}
	thumbs, err := thumbprints(req.Params)
	if err != nil {
		return nil, err
	}
	if len(thumbs) == 0 {
		return nil, validation("Value null at 'thumbprintList' failed to satisfy constraint: Member must not be null")
	}
	return &empty{}, a.update(ctx, func(tx *state.Tx) error { return tx.UpdateOIDCProviderThumbprints(arn, thumbs) })
}
