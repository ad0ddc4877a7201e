package ec2api

import (
	"context"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type xmlTrunkAssociation struct {
	AssociationID     string   `xml:"associationId"`
	BranchInterfaceID string   `xml:"branchInterfaceId"`
	TrunkInterfaceID  string   `xml:"trunkInterfaceId"`
	InterfaceProtocol string   `xml:"interfaceProtocol"`
	VlanID            int      `xml:"vlanId"`
	TagSet            []xmlTag `xml:"tagSet>item"`
}

func renderAssociation(a *state.TrunkAssociation) xmlTrunkAssociation {
	return xmlTrunkAssociation{
		AssociationID: a.ID, BranchInterfaceID: a.BranchID, TrunkInterfaceID: a.TrunkID,
		InterfaceProtocol: "VLAN", VlanID: a.VlanID, TagSet: tagSet(a.Tags),
	}
}

func associationFields(a *state.TrunkAssociation) query.Fields {
	return fieldMap(a.Tags, map[string][]string{
		"trunk-interface-association.id":                  one(a.ID),
		"trunk-interface-association.trunk-interface-id":  one(a.TrunkID),
		"trunk-interface-association.branch-interface-id": one(a.BranchID),
		"gateway-load-balancer-endpoint-id":               nil,
	})
}

func (a *API) associateTrunkInterface(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	branch, err := p.Required("BranchInterfaceId")
	if err != nil {
		return nil, err
	}
	trunk, err := p.Required("TrunkInterfaceId")
	if err != nil {
		return nil, err
	}
	if p.Has("GreKey") {
		return nil, apierr.New(apierr.CodeUnsupportedOperation, "GRE trunk associations are not supported; use VlanId.")
	}
	vlan, err := requiredInt(p, "VlanId", -1<<31, 1<<31-1)
	if err != nil {
		return nil, err
	}
	in := state.AssociateInput{BranchID: branch, TrunkID: trunk, VlanID: vlan, Idempotency: idempotency(req)}
	resp := &struct {
		query.Envelope
		InterfaceAssociation xmlTrunkAssociation `xml:"interfaceAssociation"`
		ClientToken          string              `xml:"clientToken,omitempty"`
	}{ClientToken: in.Idempotency.Token}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		assoc, err := tx.AssociateTrunkInterface(in)
		if err == nil {
			resp.InterfaceAssociation = renderAssociation(assoc)
		}
		return err
	})
	return resp, err
}

func (a *API) disassociateTrunkInterface(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("AssociationId")
	if err != nil {
		return nil, err
	}
	idem := idempotency(req)
	resp := &struct {
		query.Envelope
		Return      bool   `xml:"return"`
		ClientToken string `xml:"clientToken,omitempty"`
	}{Return: true, ClientToken: idem.Token}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.DisassociateTrunkInterface(id, idem) })
	return resp, err
}

func (a *API) describeTrunkInterfaceAssociations(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		Associations []xmlTrunkAssociation `xml:"interfaceAssociationSet>item"`
		NextToken    string                `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		l := listing[*state.TrunkAssociation]{
			idParam: "AssociationId", idPrefix: "trunk-assoc", get: tx.TrunkAssociation, all: tx.TrunkAssociations,
			key: func(a *state.TrunkAssociation) string { return a.ID }, fields: associationFields,
			sample: &state.TrunkAssociation{}, minPage: 5, maxPage: 255, ids: tx.TrunkAssociationIDs,
			narrow: func(filters []query.Filter) ([]string, bool) {
				return narrowBy(filters, func(name, value string) (int, func() []string, bool) {
					if name != "trunk-interface-association.trunk-interface-id" {
						return 0, nil, false
					}
					n, ids := tx.AssociationsOfTrunk(value)
					return n, ids, true
				})
			},
		}
		page, next, err := l.run(req.Params)
		for _, a := range page {
			resp.Associations = append(resp.Associations, renderAssociation(a))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}
