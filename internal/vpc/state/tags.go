package state

import (
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Resource types as DescribeTags and TagSpecification name them.
const (
	ResourceVPC           = "vpc"
	ResourceSubnet        = "subnet"
	ResourceSecurityGroup = "security-group"
	ResourceRule          = "security-group-rule"
	ResourceInstance      = "instance"
	ResourceENI           = "network-interface"
)

// TagDescription is one tag of one resource.
type TagDescription struct {
	ResourceID   string
	ResourceType string
	Key          string
	Value        string
}

// TagKey selects a tag to delete; with HasValue only if the value matches.
type TagKey struct {
	Key      string
	Value    string
	HasValue bool
}

// CheckTags validates tag keys and values as EC2 does: any Unicode text
// (EC2, unlike other services, allows any character in tags), keys of 1 to
// 128 characters not starting with aws:, values of up to 256.
func CheckTags(tags Tags) error {
	for _, k := range slices.Sorted(maps.Keys(tags)) { // the same error for the same request
		v := tags[k]
		if err := checkText("Tag.Key", k); err != nil {
			return err
		}
		if err := checkText("Tag.Value", v); err != nil {
			return err
		}
		switch {
		case k == "" || utf8.RuneCountInString(k) > 128:
			return apierr.InvalidValue("Tag key must be between 1 and 128 characters: '%s'", k)
		case utf8.RuneCountInString(v) > 256:
			return apierr.InvalidValue("Tag value exceeds the maximum length of 256 characters for key '%s'", k)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return apierr.InvalidValue("Tag keys starting with 'aws:' are reserved for internal use")
		}
	}
	return nil
}

func (tx *Tx) checkTagCount(id string, tags Tags) error {
	if len(tags) > tx.s.opts.Limits.TagsPerResource {
		return apierr.New("TagLimitExceeded", "The maximum number of tags (%d) for resource '%s' has been reached.", tx.s.opts.Limits.TagsPerResource, id)
	}
	return nil
}

// retag applies fn to a resource's tags, storing a changed copy.
func (tx *Tx) retag(id string, fn func(Tags) Tags) error {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "vpc":
		return retagIn(tx, tx.m.vpcs, kindVPC, id, func(v *VPC) *Tags { return &v.Tags }, (*VPC).clone, fn)
	case "subnet":
		return retagIn(tx, tx.m.subnets, kindSubnet, id, func(v *Subnet) *Tags { return &v.Tags }, (*Subnet).clone, fn)
	case "sg":
		return retagIn(tx, tx.m.groups, kindGroup, id, func(v *SecurityGroup) *Tags { return &v.Tags }, (*SecurityGroup).clone, fn)
	case "i":
		return retagIn(tx, tx.m.instances, kindInstance, id, func(v *Instance) *Tags { return &v.Tags }, (*Instance).clone, fn)
	case "eni":
		return retagIn(tx, tx.m.enis, kindENI, id, func(v *ENI) *Tags { return &v.Tags }, (*ENI).clone, fn)
	case "sgr":
		return tx.retagRule(id, fn)
	}
	return apierr.New("InvalidID", "The ID '%s' is not valid", id)
}

func retagIn[T any](tx *Tx, t *table[T], k idKind, id string, tagsOf func(*T) *Tags, clone func(*T) *T, fn func(Tags) Tags) error {
	cur, err := lookup(t, k, id)
	if err != nil {
		return err
	}
	c := clone(cur)
	tags := tagsOf(c)
	*tags = fn(maps.Clone(*tags))
	if err := tx.checkTagCount(id, *tags); err != nil {
		return err
	}
	put(tx, t, id, c)
	return nil
}

func (tx *Tx) retagRule(id string, fn func(Tags) Tags) error {
	if err := kindRule.check(id); err != nil {
		return err
	}
	gid, ok := tx.m.ruleOwner[id]
	if !ok {
		return kindRule.missing(id)
	}
	g, _ := tx.m.groups.get(gid)
	c := g.clone()
	for i := range c.Rules {
		if c.Rules[i].ID == id {
			c.Rules[i].Tags = fn(c.Rules[i].Tags)
			if err := tx.checkTagCount(id, c.Rules[i].Tags); err != nil {
				return err
			}
		}
	}
	put(tx, tx.m.groups, gid, c)
	return nil
}

// CreateTags adds or overwrites tags on resources.
func (tx *Tx) CreateTags(ids []string, tags Tags) error {
	if err := CheckTags(tags); err != nil {
		return err
	}
	for _, id := range ids {
		err := tx.retag(id, func(t Tags) Tags {
			if t == nil {
				t = Tags{}
			}
			maps.Copy(t, tags)
			return t
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteTags removes tags; with no keys it removes all of them.
func (tx *Tx) DeleteTags(ids []string, keys []TagKey) error {
	for _, id := range ids {
		err := tx.retag(id, func(t Tags) Tags {
			if len(keys) == 0 {
				return nil
			}
			for _, k := range keys {
				if v, ok := t[k.Key]; ok && (!k.HasValue || v == k.Value) {
					delete(t, k.Key)
				}
			}
			if len(t) == 0 {
				return nil
			}
			return t
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// TagDescriptions lists every tag sorted by resource id, then key.
func (tx *Tx) TagDescriptions() []TagDescription {
	var out []TagDescription
	add := func(id, typ string, tags Tags) {
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			out = append(out, TagDescription{ResourceID: id, ResourceType: typ, Key: k, Value: tags[k]})
		}
	}
	for _, v := range tx.m.vpcs.list() {
		add(v.ID, ResourceVPC, v.Tags)
	}
	for _, s := range tx.m.subnets.list() {
		add(s.ID, ResourceSubnet, s.Tags)
	}
	for _, g := range tx.m.groups.list() {
		add(g.ID, ResourceSecurityGroup, g.Tags)
		for _, r := range g.Rules {
			add(r.ID, ResourceRule, r.Tags)
		}
	}
	for _, i := range tx.m.instances.list() {
		if !i.Expired(tx.now) {
			add(i.ID, ResourceInstance, i.Tags)
		}
	}
	for _, e := range tx.m.enis.list() {
		add(e.ID, ResourceENI, e.Tags)
	}
	slices.SortStableFunc(out, func(a, b TagDescription) int {
		if c := strings.Compare(a.ResourceID, b.ResourceID); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return out
}
