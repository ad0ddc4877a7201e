package ec2api

import (
	"context"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

type xmlRule struct {
	SecurityGroupRuleID  string         `xml:"securityGroupRuleId"`
	GroupID              string         `xml:"groupId"`
	GroupOwnerID         string         `xml:"groupOwnerId"`
	IsEgress             bool           `xml:"isEgress"`
	IPProtocol           string         `xml:"ipProtocol"`
	FromPort             int32          `xml:"fromPort"`
	ToPort               int32          `xml:"toPort"`
	CidrIpv4             string         `xml:"cidrIpv4,omitempty"`
	ReferencedGroupInfo  *xmlReferenced `xml:"referencedGroupInfo,omitempty"`
	Description          string         `xml:"description,omitempty"`
	TagSet               []xmlTag       `xml:"tagSet>item"`
	SecurityGroupRuleArn string         `xml:"securityGroupRuleArn"`
}

type xmlReferenced struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

// ruleRef pairs a rule with its group for describe and render.
type ruleRef struct {
	groupID string
	rule    state.Rule
}

func renderRule(region string, r ruleRef) xmlRule {
	x := xmlRule{
		SecurityGroupRuleID: r.rule.ID, GroupID: r.groupID, GroupOwnerID: state.AccountID, IsEgress: r.rule.Egress,
		IPProtocol: r.rule.Protocol, FromPort: r.rule.FromPort, ToPort: r.rule.ToPort, CidrIpv4: r.rule.CIDR,
		Description: r.rule.Description, TagSet: tagSet(r.rule.Tags),
		SecurityGroupRuleArn: arn(region, "security-group-rule/"+r.rule.ID),
	}
	if r.rule.GroupID != "" {
		x.ReferencedGroupInfo = &xmlReferenced{GroupID: r.rule.GroupID, UserID: state.AccountID}
	}
	return x
}

// parsePermissions decodes IpPermissions.N, or the legacy top-level
// IpProtocol/FromPort/ToPort/CidrIp/SourceSecurityGroupName form.
func parsePermissions(p query.Params) ([]state.Permission, error) {
	members := p.Members("IpPermissions")
	legacy := p.Has("IpProtocol") || p.Has("CidrIp") || p.Has("SourceSecurityGroupName") || p.Has("FromPort") || p.Has("ToPort")
	if legacy && len(members) > 0 {
		return nil, apierr.Combination("The parameter IpPermissions cannot be used with the parameters IpProtocol, FromPort, ToPort, CidrIp or SourceSecurityGroupName")
	}
	if legacy {
		perm, err := parseLegacy(p)
		return []state.Permission{perm}, err
	}
	var out []state.Permission
	for _, m := range members {
		perm, err := parsePermission(m)
		if err != nil {
			return nil, err
		}
		out = append(out, perm)
	}
	return out, nil
}

func parsePermission(m query.Params) (state.Permission, error) {
	if len(m.Members("Ipv6Ranges")) > 0 || len(m.Members("PrefixListIds")) > 0 {
		return state.Permission{}, apierr.New(apierr.CodeUnsupportedOperation, "IPv6 ranges and prefix lists are not supported by the local VPC.")
	}
	from, err := optionalInt32(m, "FromPort")
	if err != nil {
		return state.Permission{}, err
	}
	to, err := optionalInt32(m, "ToPort")
	if err != nil {
		return state.Permission{}, err
	}
	perm := state.Permission{Protocol: m.String("IpProtocol"), FromPort: from, ToPort: to}
	for _, r := range m.Members("IpRanges") {
		perm.CIDRs = append(perm.CIDRs, state.CIDRPeer{CIDR: r.String("CidrIp"), Description: r.String("Description")})
	}
	for _, g := range m.Members("Groups") {
		if g.String("GroupId") == "" && g.String("GroupName") == "" {
			return state.Permission{}, apierr.Missing("IpPermissions.Groups.GroupId")
		}
		perm.Groups = append(perm.Groups, state.GroupPeer{GroupID: g.String("GroupId"), GroupName: g.String("GroupName"), Description: g.String("Description")})
	}
	return perm, nil
}

func parseLegacy(p query.Params) (state.Permission, error) {
	sub := query.Params{}
	for _, k := range []string{"IpProtocol", "FromPort", "ToPort"} {
		if v, ok := p[k]; ok {
			sub[k] = v
		}
	}
	perm, err := parsePermission(sub)
	if err != nil {
		return perm, err
	}
	if perm.Protocol == "" {
		perm.Protocol = "-1"
	}
	if c := p.String("CidrIp"); c != "" {
		perm.CIDRs = []state.CIDRPeer{{CIDR: c}}
	}
	if name := p.String("SourceSecurityGroupName"); name != "" {
		peer := state.GroupPeer{GroupName: name}
		if strings.HasPrefix(name, "sg-") {
			peer = state.GroupPeer{GroupID: name}
		}
		perm.Groups = []state.GroupPeer{peer}
	}
	return perm, nil
}

func targetGroup(tx *state.Tx, p query.Params) (*state.SecurityGroup, error) {
	id, name := p.String("GroupId"), p.String("GroupName")
	if id == "" && name == "" {
		return nil, apierr.Missing("GroupId")
	}
	return tx.ResolveGroup(id, name, "")
}

func (a *API) authorize(egress bool) query.Handler {
	return func(ctx context.Context, req *query.Request) (query.Response, error) {
		perms, err := parsePermissions(req.Params)
		if err != nil {
			return nil, err
		}
		if len(perms) == 0 {
			return nil, apierr.Missing("IpPermissions")
		}
		tags, err := tagSpecs(req, state.ResourceRule)
		if err != nil {
			return nil, err
		}
		resp := &struct {
			query.Envelope
			Return bool      `xml:"return"`
			Rules  []xmlRule `xml:"securityGroupRuleSet>item"`
		}{}
		err = a.mutate(ctx, req, func(tx *state.Tx) error {
			g, err := targetGroup(tx, req.Params)
			if err != nil {
				return err
			}
			rules, err := tx.AuthorizeRules(g.ID, egress, perms, tags[state.ResourceRule])
			for _, r := range rules {
				resp.Rules = append(resp.Rules, renderRule(tx.Region(), ruleRef{g.ID, r}))
			}
			resp.Return = err == nil
			return err
		})
		return resp, err
	}
}

func (a *API) revoke(egress bool) query.Handler {
	return func(ctx context.Context, req *query.Request) (query.Response, error) {
		perms, err := parsePermissions(req.Params)
		if err != nil {
			return nil, err
		}
		ruleIDs := req.Params.List("SecurityGroupRuleId")
		if len(perms) == 0 && len(ruleIDs) == 0 {
			return nil, apierr.Missing("IpPermissions")
		}
		resp := &struct {
			query.Envelope
			Return  bool              `xml:"return"`
			Unknown []xmlIPPermission `xml:"unknownIpPermissionSet>item"`
			Revoked []xmlRule         `xml:"revokedSecurityGroupRuleSet>item"`
		}{}
		err = a.mutate(ctx, req, func(tx *state.Tx) error {
			g, err := targetGroup(tx, req.Params)
			if err != nil {
				return err
			}
			revoked, unknown, err := tx.RevokeRules(g.ID, egress, perms, ruleIDs)
			for _, r := range revoked {
				resp.Revoked = append(resp.Revoked, renderRule(tx.Region(), ruleRef{g.ID, r}))
			}
			resp.Unknown = unknownPermissions(unknown)
			resp.Return = err == nil
			return err
		})
		return resp, err
	}
}

func unknownPermissions(perms []state.Permission) []xmlIPPermission {
	var out []xmlIPPermission
	for _, p := range perms {
		x := xmlIPPermission{IPProtocol: p.Protocol, FromPort: p.FromPort, ToPort: p.ToPort}
		for _, c := range p.CIDRs {
			x.IPRanges = append(x.IPRanges, xmlIPRange{CidrIP: c.CIDR, Description: c.Description})
		}
		for _, g := range p.Groups {
			x.Groups = append(x.Groups, xmlGroupPair{UserID: state.AccountID, GroupID: g.GroupID})
		}
		out = append(out, x)
	}
	return out
}

func ruleFields(r ruleRef) query.Fields {
	return fieldMap(r.rule.Tags, map[string][]string{
		"group-id":               one(r.groupID),
		"security-group-rule-id": one(r.rule.ID),
	})
}

func allRules(tx *state.Tx) []ruleRef {
	var out []ruleRef
	for _, g := range tx.SecurityGroups() {
		for _, r := range g.Rules {
			out = append(out, ruleRef{g.ID, r})
		}
	}
	slices.SortFunc(out, func(a, b ruleRef) int { return strings.Compare(a.rule.ID, b.rule.ID) })
	return out
}

func (a *API) describeSecurityGroupRules(_ context.Context, req *query.Request) (query.Response, error) {
	resp := &struct {
		query.Envelope
		Rules     []xmlRule `xml:"securityGroupRuleSet>item"`
		NextToken string    `xml:"nextToken,omitempty"`
	}{}
	err := a.read(req, func(tx *state.Tx) error {
		l := listing[ruleRef]{
			idParam: "SecurityGroupRuleId", idPrefix: "sgr",
			get: func(id string) (ruleRef, bool) {
				g, ok := tx.RuleGroup(id)
				if !ok {
					return ruleRef{}, false
				}
				i := slices.IndexFunc(g.Rules, func(r state.Rule) bool { return r.ID == id })
				return ruleRef{g.ID, g.Rules[i]}, true
			},
			all: func() []ruleRef { return allRules(tx) }, key: func(r ruleRef) string { return r.rule.ID },
			fields: ruleFields, minPage: 5, maxPage: 1000,
		}
		page, next, err := l.run(req.Params)
		for _, r := range page {
			resp.Rules = append(resp.Rules, renderRule(tx.Region(), r))
		}
		resp.NextToken = next
		return err
	})
	return resp, err
}
