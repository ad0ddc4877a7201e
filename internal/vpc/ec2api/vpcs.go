package ec2api

import (
	"context"

	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type xmlVpc struct {
	VpcID           string         `xml:"vpcId"`
	OwnerID         string         `xml:"ownerId"`
	State           string         `xml:"state"`
	CidrBlock       string         `xml:"cidrBlock"`
	CidrAssocSet    []xmlCidrAssoc `xml:"cidrBlockAssociationSet>item"`
	DhcpOptionsID   string         `xml:"dhcpOptionsId"`
	InstanceTenancy string         `xml:"instanceTenancy"`
	IsDefault       bool           `xml:"isDefault"`
	TagSet          []xmlTag       `xml:"tagSet>item"`
}

type xmlCidrAssoc struct {
	AssociationID  string   `xml:"associationId"`
	CidrBlock      string   `xml:"cidrBlock"`
	CidrBlockState xmlState `xml:"cidrBlockState"`
}

func renderVpc(v *state.VPC) xmlVpc {
	return xmlVpc{
		VpcID: v.ID, OwnerID: state.AccountID, State: "available", CidrBlock: v.CIDR,
		CidrAssocSet:  []xmlCidrAssoc{{AssociationID: v.CIDRAssociation, CidrBlock: v.CIDR, CidrBlockState: xmlState{"associated"}}},
		DhcpOptionsID: "default", InstanceTenancy: "default", TagSet: tagSet(v.Tags),
	}
}

func vpcFields(v *state.VPC) query.Fields {
	return fieldMap(v.Tags, map[string][]string{
		"vpc-id":                            one(v.ID),
		"cidr":                              one(v.CIDR),
		"cidr-block":                        one(v.CIDR),
		"cidr-block-association.cidr-block": one(v.CIDR),
		"state":                             one("available"),
		"is-default":                        one("false"),
		"owner-id":                          one(state.AccountID),
		"dhcp-options-id":                   one("default"),
	})
}

func (a *API) createVpc(ctx context.Context, req *query.Request) (query.Response, error) {
	cidr, err := req.Params.Required("CidrBlock")
	if err != nil {
		return nil, err
	}
	tags, err := tagSpecs(req, state.ResourceVPC)
	if err != nil {
		return nil, err
	}
	resp := &struct {
		query.Envelope
		Vpc xmlVpc `xml:"vpc"`
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		v, err := tx.CreateVPC(cidr, tags[state.ResourceVPC])
		if err == nil {
			resp.Vpc = renderVpc(v)
		}
		return err
	})
	return resp, err
}

func (a *API) describeVpcs(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		VpcSet    []xmlVpc `xml:"vpcSet>item"`
		NextToken string   `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		l := listing[*state.VPC]{
			idParam: "VpcId", idPrefix: "vpc", get: tx.VPC, all: tx.VPCs,
			key: func(v *state.VPC) string { return v.ID }, fields: vpcFields, sample: &state.VPC{},
			minPage: 5, maxPage: 1000,
		}
		page, next, err := l.run(req.Params)
		for _, v := range page {
			resp.VpcSet = append(resp.VpcSet, renderVpc(v))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}

func (a *API) deleteVpc(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("VpcId")
	if err != nil {
		return nil, err
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.DeleteVPC(id) })
	return &query.ReturnResponse{Return: true}, err
}
