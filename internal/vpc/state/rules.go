package state

import (
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Permission is one IpPermission as a request carries it.
type Permission struct {
	Protocol string
	// FromPort/ToPort are nil when the request omitted them.
	FromPort, ToPort *int32
	CIDRs            []CIDRPeer
	Groups           []GroupPeer
}

// CIDRPeer is an IpRanges entry.
type CIDRPeer struct{ CIDR, Description string }

// GroupPeer is a UserIdGroupPairs entry: a group by id or by name.
type GroupPeer struct{ GroupID, GroupName, Description string }

// normalizeProtocol maps names and numbers onto EC2's canonical spelling.
func normalizeProtocol(p string) (string, error) {
	switch strings.ToLower(p) {
	case "-1", "all":
		return "-1", nil
	case "tcp", "6":
		return "tcp", nil
	case "udp", "17":
		return "udp", nil
	case "icmp", "1":
		return "icmp", nil
	case "":
		return "", apierr.Missing("IpProtocol")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 255 {
		return "", apierr.InvalidValue("Invalid value '%s' for IP protocol. Unknown protocol.", p)
	}
	return strconv.Itoa(n), nil
}

// ports validates the port range (or ICMP type/code) for a protocol.
func ports(proto string, from, to *int32) (int32, int32, error) {
	switch proto {
	case "tcp", "udp":
		return portRange(from, to)
	case "icmp":
		return icmpTypeCode(from, to)
	}
	// All protocols and protocols without ports ignore the range, as EC2 does.
	return -1, -1, nil
}

// portRange validates a TCP/UDP port range: both ends given, within 0..65535, in order.
func portRange(from, to *int32) (int32, int32, error) {
	if from == nil || to == nil {
		return 0, 0, apierr.InvalidValue("Invalid value 'null' for portRange. Must specify both from and to ports with TCP/UDP.")
	}
	if *from < 0 || *to > 65535 || *from > *to {
		return 0, 0, apierr.InvalidValue("Invalid TCP/UDP port range: %d-%d", *from, *to)
	}
	return *from, *to, nil
}

// icmpTypeCode validates an ICMP type and code, each -1 (any, the default) or 0..255; a
// code needs a type.
func icmpTypeCode(from, to *int32) (int32, int32, error) {
	f, t := int32(-1), int32(-1)
	if from != nil {
		f = *from
	}
	if to != nil {
		t = *to
	}
	if f < -1 || f > 255 || t < -1 || t > 255 || (f == -1 && t != -1) {
		return 0, 0, apierr.InvalidValue("Invalid value for ICMP type/code: %d/%d", f, t)
	}
	return f, t, nil
}

// expand turns permissions into one rule per peer, validated and resolved.
func (tx *Tx) expand(g *SecurityGroup, egress bool, perms []Permission) ([]Rule, error) {
	var out []Rule
	for _, p := range perms {
		proto, err := normalizeProtocol(p.Protocol)
		if err != nil {
			return nil, err
		}
		from, to, err := ports(proto, p.FromPort, p.ToPort)
		if err != nil {
			return nil, err
		}
		if len(p.CIDRs) == 0 && len(p.Groups) == 0 {
			return nil, apierr.Missing("IpPermissions.IpRanges or IpPermissions.Groups")
		}
		base := Rule{Egress: egress, Protocol: proto, FromPort: from, ToPort: to}
		for _, c := range p.CIDRs {
			if err := checkGroupText("Description", "rule description", c.Description); err != nil {
				return nil, err
			}
			pfx, err := netip.ParsePrefix(c.CIDR)
			if err != nil || !pfx.Addr().Is4() || pfx.Masked() != pfx {
				return nil, apierr.InvalidValue("CIDR block %s is malformed", c.CIDR)
			}
			r := base
			r.CIDR, r.Description = pfx.String(), c.Description
			out = append(out, r)
		}
		for _, peer := range p.Groups {
			if err := checkGroupText("Description", "rule description", peer.Description); err != nil {
				return nil, err
			}
			ref, err := tx.ResolveGroup(peer.GroupID, peer.GroupName, g.VPCID)
			if err != nil {
				return nil, err
			}
			if ref.VPCID != g.VPCID {
				return nil, apierr.New("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", ref.ID, g.VPCID)
			}
			r := base
			r.GroupID, r.Description = ref.ID, peer.Description
			out = append(out, r)
		}
	}
	return out, nil
}

// ruleKey identifies a rule by content, ignoring id and description, the
// way EC2 decides duplicates and revocations.
func ruleKey(r Rule) string {
	return fmt.Sprintf("%t|%s|%d|%d|%s|%s", r.Egress, r.Protocol, r.FromPort, r.ToPort, r.CIDR, r.GroupID)
}

// describe renders a rule the way EC2 quotes it in duplicate errors.
func (r Rule) describe() string {
	peer := r.CIDR
	if r.GroupID != "" {
		peer = r.GroupID
	}
	proto := strings.ToUpper(r.Protocol)
	if r.Protocol == "-1" {
		proto = "ALL"
	}
	ports := ""
	if r.FromPort != -1 {
		ports = fmt.Sprintf(", %d-%d", r.FromPort, r.ToPort)
	}
	return fmt.Sprintf("peer: %s, %s%s, ALLOW", peer, proto, ports)
}

// AuthorizeRules adds rules to a group.
func (tx *Tx) AuthorizeRules(groupID string, egress bool, perms []Permission, tags Tags) ([]Rule, error) {
	g, err := tx.lookupGroup(groupID)
	if err != nil {
		return nil, err
	}
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	rules, err := tx.expand(g, egress, perms)
	if err != nil {
		return nil, err
	}
	existing := map[string]bool{}
	count := 0
	for _, r := range g.Rules {
		existing[ruleKey(r)] = true
		if r.Egress == egress {
			count++
		}
	}
	c := g.clone()
	for i := range rules {
		k := ruleKey(rules[i])
		if existing[k] {
			return nil, apierr.New("InvalidPermission.Duplicate", "the specified rule \"%s\" already exists", rules[i].describe())
		}
		existing[k] = true
		rules[i].ID = tx.newID("sgr")
		if len(tags) > 0 {
			rules[i].Tags = maps.Clone(tags)
		}
		c.Rules = append(c.Rules, rules[i])
	}
	if limit := tx.s.opts.Limits.RulesPerSecurityGroup; count+len(rules) > limit {
		return nil, apierr.New(apierr.CodeRulesPerSGExceeded, "The maximum number of rules per security group has been reached.")
	}
	put(tx, tx.m.groups, g.ID, c)
	return rules, nil
}

// RevokeRules removes rules matched by content or by sgr- id. Permissions
// that match nothing are returned as unknown; if nothing matched at all the
// call fails with InvalidPermission.NotFound.
func (tx *Tx) RevokeRules(groupID string, egress bool, perms []Permission, ruleIDs []string) (revoked []Rule, unknown []Permission, err error) {
	g, err := tx.lookupGroup(groupID)
	if err != nil {
		return nil, nil, err
	}
	drop := map[string]bool{}
	for _, id := range ruleIDs {
		if err := kindRule.check(id); err != nil {
			return nil, nil, err
		}
		if tx.m.ruleOwner[id] != g.ID {
			return nil, nil, kindRule.missing(id)
		}
		drop[id] = true
	}
	byKey := map[string]string{}
	for _, r := range g.Rules {
		if r.Egress == egress {
			byKey[ruleKey(r)] = r.ID
		}
	}
	for _, p := range perms {
		rules, err := tx.expand(g, egress, []Permission{p})
		if err != nil {
			return nil, nil, err
		}
		matched := false
		for _, r := range rules {
			if id, ok := byKey[ruleKey(r)]; ok {
				drop[id], matched = true, true
			}
		}
		if !matched {
			unknown = append(unknown, p)
		}
	}
	if len(drop) == 0 {
		return nil, nil, apierr.New("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
	}
	c := g.clone()
	c.Rules = c.Rules[:0]
	for _, r := range g.clone().Rules {
		if drop[r.ID] {
			revoked = append(revoked, r)
			continue
		}
		c.Rules = append(c.Rules, r)
	}
	put(tx, tx.m.groups, g.ID, c)
	return revoked, unknown, nil
}

// RuleGroup returns the group owning a rule.
func (tx *Tx) RuleGroup(ruleID string) (*SecurityGroup, bool) {
	gid, ok := tx.m.ruleOwner[ruleID]
	if !ok {
		return nil, false
	}
	return tx.m.groups.get(gid)
}
