package ec2api

import (
	"context"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Instance profiles: RunInstances' IamInstanceProfile and
// AssociateIamInstanceProfile bind one to an instance, whose metadata
// service then hands out its role's credentials.

type xmlIAMProfile struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

func renderIAMProfile(a *state.ProfileAssociation) *xmlIAMProfile {
	if a == nil {
		return nil
	}
	return &xmlIAMProfile{Arn: a.ProfileARN, ID: a.ProfileID}
}

// parseProfileRef reads IamInstanceProfile.Arn or .Name (one of them).
func parseProfileRef(p query.Params) (state.ProfileRef, error) {
	ref := state.ProfileRef{ARN: p.String("IamInstanceProfile.Arn"), Name: p.String("IamInstanceProfile.Name")}
	if ref.ARN != "" && ref.Name != "" {
		return ref, apierr.Combination("The parameter 'iamInstanceProfile.name' may not be used in combination with 'iamInstanceProfile.arn'")
	}
	return ref, nil
}

func (a *API) associateIamInstanceProfile(ctx context.Context, req *query.Request) (query.Response, error) {
	id, err := req.Params.Required("InstanceId")
	if err != nil {
		return nil, err
	}
	ref, err := parseProfileRef(req.Params)
	if err != nil {
		return nil, err
	}
	if ref == (state.ProfileRef{}) {
		return nil, apierr.Missing("IamInstanceProfile")
	}
	type assocXML struct {
		AssociationID      string         `xml:"associationId"`
		InstanceID         string         `xml:"instanceId"`
		IamInstanceProfile *xmlIAMProfile `xml:"iamInstanceProfile"`
		State              string         `xml:"state"`
	}
	resp := &struct {
		query.Envelope
		Association assocXML `xml:"iamInstanceProfileAssociation"`
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		inst, err := tx.AssociateIamInstanceProfile(id, ref)
		if err != nil {
			return err
		}
		resp.Association = assocXML{AssociationID: inst.IAMProfile.ID, InstanceID: inst.ID,
			IamInstanceProfile: renderIAMProfile(inst.IAMProfile), State: "associating"}
		return nil
	})
	return resp, err
}
