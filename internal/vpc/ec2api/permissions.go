package ec2api

import (
	"context"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Network interface permissions (CreateNetworkInterfacePermission and its Describe and Delete):
// AWS's vpc-resource-controller grants INSTANCE-ATTACH on every trunk and branch it creates.

type xmlPermission struct {
	ID                 string             `xml:"networkInterfacePermissionId"`
	NetworkInterfaceID string             `xml:"networkInterfaceId"`
	AwsAccountID       string             `xml:"awsAccountId"`
	Permission         string             `xml:"permission"`
	PermissionState    xmlPermissionState `xml:"permissionState"`
}

type xmlPermissionState struct {
	State string `xml:"state"`
}

func renderPermission(p *state.ENIPermission) xmlPermission {
	return xmlPermission{ID: p.ID, NetworkInterfaceID: p.ENIID, AwsAccountID: p.AccountID, Permission: p.Permission,
		PermissionState: xmlPermissionState{State: state.PermissionGranted}}
}

// permissionFields are the filters EC2 documents for DescribeNetworkInterfacePermissions;
// permissions carry no tags.
func permissionFields(p *state.ENIPermission) query.Fields {
	return func(name string) ([]string, bool) {
		switch name {
		case "network-interface-permission.network-interface-permission-id":
			return one(p.ID), true
		case "network-interface-permission.network-interface-id":
			return one(p.ENIID), true
		case "network-interface-permission.aws-account-id":
			return one(p.AccountID), true
		case "network-interface-permission.aws-service":
			return nil, true
		case "network-interface-permission.permission":
			return one(p.Permission), true
		}
		return nil, false
	}
}

func (a *API) createNetworkInterfacePermission(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	eni, err := p.Required("NetworkInterfaceId")
	if err != nil {
		return nil, err
	}
	perm, err := p.Required("Permission")
	if err != nil {
		return nil, err
	}
	account := p.String("AwsAccountId")
	switch {
	case p.String("AwsService") != "" && account != "":
		return nil, apierr.Combination("Specify either AwsAccountId or AwsService, not both.")
	case p.String("AwsService") != "":
		// EC2's reference: "The Amazon Web Services service. Currently not supported."
		return nil, apierr.New(apierr.CodeUnsupportedOperation, "The parameter AwsService is not supported.")
	case account == "":
		return nil, apierr.Missing("AwsAccountId")
	}
	resp := &struct {
		query.Envelope
		InterfacePermission xmlPermission `xml:"interfacePermission"`
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		got, err := tx.CreateNetworkInterfacePermission(state.PermissionInput{ENIID: eni, AccountID: account, Permission: perm})
		if err == nil {
			resp.InterfacePermission = renderPermission(got)
		}
		return err
	})
	return resp, err
}

func (a *API) deleteNetworkInterfacePermission(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("NetworkInterfacePermissionId")
	if err != nil {
		return nil, err
	}
	force, _, err := req.Params.Bool("Force")
	if err != nil {
		return nil, err
	}
	err = a.mutate(ctx, req, func(tx *state.Tx) error { return tx.DeleteNetworkInterfacePermission(id, force) })
	return &query.ReturnResponse{Return: true}, err
}

func (a *API) describeNetworkInterfacePermissions(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		Permissions []xmlPermission `xml:"networkInterfacePermissions>item"`
		NextToken   string          `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		l := listing[*state.ENIPermission]{
			idParam: "NetworkInterfacePermissionId", idPrefix: "eni-perm", get: tx.ENIPermission, all: tx.ENIPermissionList,
			key: func(p *state.ENIPermission) string { return p.ID }, fields: permissionFields,
			sample: &state.ENIPermission{}, minPage: 5, maxPage: 255,
			// EC2's reference: without MaxResults, up to 50 are returned.
			defaultPage: 50,
		}
		page, next, err := l.run(req.Params)
		resp.Permissions = make([]xmlPermission, 0, len(page))
		for _, p := range page {
			resp.Permissions = append(resp.Permissions, renderPermission(p))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}
