package iamapi

import (
	"slices"

	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func tagList(t state.Tags) []tagXML {
	var out []tagXML
	for k, v := range t {
		out = append(out, tagXML{k, v})
	}
	slices.SortFunc(out, func(a, b tagXML) int {
		if a.Key < b.Key {
			return -1
		}
		if a.Key > b.Key {
			return 1
		}
		return 0
	})
	return out
}

type roleXML struct {
	Path                     string   `xml:"Path"`
	RoleName                 string   `xml:"RoleName"`
	RoleID                   string   `xml:"RoleId"`
	Arn                      string   `xml:"Arn"`
	CreateDate               string   `xml:"CreateDate"`
	AssumeRolePolicyDocument string   `xml:"AssumeRolePolicyDocument"`
	Description              string   `xml:"Description,omitempty"`
	MaxSessionDuration       int      `xml:"MaxSessionDuration"`
	Tags                     []tagXML `xml:"Tags>member,omitempty"`
}

func renderRole(r *state.Role) roleXML {
	return roleXML{Path: r.Path, RoleName: r.Name, RoleID: r.ID, Arn: r.ARN, CreateDate: query.Time(r.CreatedAt),
		AssumeRolePolicyDocument: encodeDocument(r.TrustPolicy), Description: r.Description,
		MaxSessionDuration: r.MaxSessionDuration, Tags: tagList(r.Tags)}
}

type policyXML struct {
	PolicyName                    string `xml:"PolicyName"`
	PolicyID                      string `xml:"PolicyId"`
	Arn                           string `xml:"Arn"`
	Path                          string `xml:"Path"`
	DefaultVersionID              string `xml:"DefaultVersionId"`
	AttachmentCount               int    `xml:"AttachmentCount"`
	PermissionsBoundaryUsageCount int    `xml:"PermissionsBoundaryUsageCount"`
	IsAttachable                  bool   `xml:"IsAttachable"`
	Description                   string `xml:"Description,omitempty"`
	CreateDate                    string `xml:"CreateDate"`
	UpdateDate                    string `xml:"UpdateDate"`
}

func renderPolicy(tx *state.Tx, p *state.ManagedPolicy) policyXML {
	return policyXML{PolicyName: p.Name, PolicyID: p.ID, Arn: p.ARN, Path: p.Path, DefaultVersionID: p.DefaultVersion,
		AttachmentCount: tx.PolicyAttachments(p.ARN), IsAttachable: true, Description: p.Description,
		CreateDate: query.Time(p.CreatedAt), UpdateDate: query.Time(p.UpdatedAt)}
}

type profileXML struct {
	Path                string    `xml:"Path"`
	InstanceProfileName string    `xml:"InstanceProfileName"`
	InstanceProfileID   string    `xml:"InstanceProfileId"`
	Arn                 string    `xml:"Arn"`
	CreateDate          string    `xml:"CreateDate"`
	Roles               []roleXML `xml:"Roles>member"`
}

func renderProfile(tx *state.Tx, p *state.InstanceProfile) profileXML {
	x := profileXML{Path: p.Path, InstanceProfileName: p.Name, InstanceProfileID: p.ID, Arn: p.ARN, CreateDate: query.Time(p.CreatedAt)}
	x.Roles = []roleXML{}
	for _, n := range p.Roles {
		if r, err := tx.Role(n); err == nil {
			x.Roles = append(x.Roles, renderRole(r))
		}
	}
	return x
}
