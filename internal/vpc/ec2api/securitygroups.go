package ec2api

import (
	"context"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type xmlSecurityGroup struct {
	OwnerID          string            `xml:"ownerId"`
	GroupID          string            `xml:"groupId"`
	GroupName        string            `xml:"groupName"`
	GroupDescription string            `xml:"groupDescription"`
	VpcID            string            `xml:"vpcId"`
	SecurityGroupArn string            `xml:"securityGroupArn"`
	IPPermissions    []xmlIPPermission `xml:"ipPermissions>item"`
	IPPermissionsEg  []xmlIPPermission `xml:"ipPermissionsEgress>item"`
	TagSet           []xmlTag          `xml:"tagSet>item"`
}

type xmlIPPermission struct {
	IPProtocol string         `xml:"ipProtocol"`
	FromPort   *int32         `xml:"fromPort,omitempty"`
	ToPort     *int32         `xml:"toPort,omitempty"`
	Groups     []xmlGroupPair `xml:"groups>item"`
	IPRanges   []xmlIPRange   `xml:"ipRanges>item"`
}

type xmlGroupPair struct {
	UserID      string `xml:"userId"`
	GroupID     string `xml:"groupId"`
	VpcID       string `xml:"vpcId,omitempty"`
	Description string `xml:"description,omitempty"`
}

type xmlIPRange struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

// permissions groups rules into IpPermissions by protocol and port range,
// the way EC2 presents them, in order of first appearance.
func permissions(g *state.SecurityGroup, egress bool) []xmlIPPermission {
	var out []xmlIPPermission
	index := map[[3]any]int{}
	for _, r := range g.Rules {
		if r.Egress != egress {
			continue
		}
		k := [3]any{r.Protocol, r.FromPort, r.ToPort}
		i, ok := index[k]
		if !ok {
			p := xmlIPPermission{IPProtocol: r.Protocol}
			if r.Protocol != "-1" {
				from, to := r.FromPort, r.ToPort
				p.FromPort, p.ToPort = &from, &to
			}
			out = append(out, p)
			i = len(out) - 1
			index[k] = i
		}
		if r.CIDR != "" {
			out[i].IPRanges = append(out[i].IPRanges, xmlIPRange{CidrIP: r.CIDR, Description: r.Description})
		} else {
			out[i].Groups = append(out[i].Groups, xmlGroupPair{UserID: state.AccountID, GroupID: r.GroupID, Description: r.Description})
		}
	}
	return out
}

func renderGroup(region string, g *state.SecurityGroup) xmlSecurityGroup {
	return xmlSecurityGroup{
		OwnerID: state.AccountID, GroupID: g.ID, GroupName: g.Name, GroupDescription: g.Description, VpcID: g.VPCID,
		SecurityGroupArn: arn(region, "security-group/"+g.ID),
		IPPermissions:    permissions(g, false), IPPermissionsEg: permissions(g, true), TagSet: tagSet(g.Tags),
	}
}

func groupFields(g *state.SecurityGroup) query.Fields {
	return fieldMap(g.Tags, map[string][]string{
		"group-id":    one(g.ID),
		"group-name":  one(g.Name),
		"vpc-id":      one(g.VPCID),
		"description": one(g.Description),
		"owner-id":    one(state.AccountID),
	})
}

func (a *API) createSecurityGroup(ctx context.Context, req *query.Request) (query.Response, error) {
	name, err := req.Params.Required("GroupName")
	if err != nil {
		return nil, err
	}
	desc, err := req.Params.Required("GroupDescription")
	if err != nil {
		return nil, err
	}
	vpcID := req.Params.String("VpcId")
	if vpcID == "" {
		return nil, apierr.New("VPCIdNotSpecified", "No default VPC for this user. GroupName is only supported for EC2-Classic and default VPC.")
	}
	tags, err := tagSpecs(req, state.ResourceSecurityGroup)
	if err != nil {
		return nil, err
	}
	resp := &struct {
		query.Envelope
		GroupID          string   `xml:"groupId"`
		SecurityGroupArn string   `xml:"securityGroupArn"`
		TagSet           []xmlTag `xml:"tagSet>item"`
	}{}
	err = a.mutate(ctx, req, func(tx *state.Tx) error {
		g, err := tx.CreateSecurityGroup(vpcID, name, desc, tags[state.ResourceSecurityGroup])
		if err == nil {
			resp.GroupID, resp.SecurityGroupArn, resp.TagSet = g.ID, arn(tx.Region(), "security-group/"+g.ID), tagSet(g.Tags)
		}
		return err
	})
	return resp, err
}

func (a *API) deleteSecurityGroup(ctx context.Context, req *query.Request) (query.Response, error) {
	id, name := req.Params.String("GroupId"), req.Params.String("GroupName")
	if id == "" && name == "" {
		return nil, apierr.Missing("GroupId")
	}
	resp := &struct {
		query.Envelope
		Return  bool   `xml:"return"`
		GroupID string `xml:"groupId"`
	}{}
	err := a.mutate(ctx, req, func(tx *state.Tx) error {
		g, err := tx.DeleteSecurityGroup(id, name)
		if err == nil {
			resp.Return, resp.GroupID = true, g.ID
		}
		return err
	})
	return resp, err
}

func (a *API) describeSecurityGroups(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		SecurityGroupInfo []xmlSecurityGroup `xml:"securityGroupInfo>item"`
		NextToken         string             `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		all := tx.SecurityGroups
		if names := req.Params.List("GroupName"); len(names) > 0 {
			all = func() []*state.SecurityGroup { return groupsByName(tx, names) }
		}
		l := listing[*state.SecurityGroup]{
			idParam: "GroupId", idPrefix: "sg", get: tx.SecurityGroup, all: all,
			key: func(g *state.SecurityGroup) string { return g.ID }, fields: groupFields, sample: &state.SecurityGroup{},
			minPage: 5, maxPage: 1000,
		}
		if err := checkGroupNames(tx, req.Params.List("GroupName")); err != nil {
			return err
		}
		page, next, err := l.run(req.Params)
		for _, g := range page {
			resp.SecurityGroupInfo = append(resp.SecurityGroupInfo, renderGroup(tx.Region(), g))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}

func groupsByName(tx *state.Tx, names []string) []*state.SecurityGroup {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []*state.SecurityGroup
	for _, g := range tx.SecurityGroups() {
		if want[g.Name] {
			out = append(out, g)
		}
	}
	return out
}

// checkGroupNames fails like EC2 when a requested group name does not exist.
func checkGroupNames(tx *state.Tx, names []string) error {
	for _, n := range names {
		if len(groupsByName(tx, []string{n})) == 0 {
			return apierr.New("InvalidGroup.NotFound", "The security group '%s' does not exist", n)
		}
	}
	return nil
}
