package ec2api

import (
	"context"

	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// xmlMetadataOptions is InstanceMetadataOptionsResponse.
type xmlMetadataOptions struct {
	State                   string `xml:"state"`
	HTTPTokens              string `xml:"httpTokens"`
	HTTPPutResponseHopLimit int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint            string `xml:"httpEndpoint"`
	HTTPProtocolIPv6        string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags    string `xml:"instanceMetadataTags"`
}

// renderMetadataOptions: state is "applied" in DescribeInstances and
// "pending" in ModifyInstanceMetadataOptions' answer, as EC2 says for a
// running instance (here the data path has applied them before either).
func renderMetadataOptions(m state.MetadataOptions, st string) *xmlMetadataOptions {
	return &xmlMetadataOptions{
		State: st, HTTPTokens: m.Tokens(), HTTPPutResponseHopLimit: m.PutResponseHopLimit(), HTTPEndpoint: m.Endpoint(),
		HTTPProtocolIPv6: state.EndpointDisabled, InstanceMetadataTags: state.EndpointDisabled,
	}
}

// parseMetadataOptions reads the options under prefix ("" for
// ModifyInstanceMetadataOptions, "MetadataOptions." for RunInstances).
func parseMetadataOptions(p query.Params, prefix string) (state.MetadataOptionsInput, error) {
	var in state.MetadataOptionsInput
	str := func(name string) *string {
		if !p.Has(prefix + name) {
			return nil
		}
		v := p.String(prefix + name)
		return &v
	}
	in.HTTPTokens, in.HTTPEndpoint = str("HttpTokens"), str("HttpEndpoint")
	in.HTTPProtocolIPv6, in.InstanceMetadataTags = str("HttpProtocolIpv6"), str("InstanceMetadataTags")
	v, ok, err := p.Int(prefix + "HttpPutResponseHopLimit")
	if err != nil {
		return in, err
	}
	if ok { // the range is the state's to check
		n := int(v)
		in.HopLimit = &n
	}
	return in, nil
}

func (a *API) modifyInstanceMetadataOptions(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("InstanceId")
	if err != nil {
		return nil, err
	}
	in, err := parseMetadataOptions(req.Params, "")
	if err != nil {
		return nil, err
	}
	resp := &struct {
		query.Envelope
		InstanceID string              `xml:"instanceId"`
		Options    *xmlMetadataOptions `xml:"instanceMetadataOptions"`
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		inst, err := tx.ModifyInstanceMetadataOptions(id, in)
		if err != nil {
			return err
		}
		resp.InstanceID, resp.Options = inst.ID, renderMetadataOptions(inst.MetadataOptions, "pending")
		return nil
	})
	return resp, err
}
