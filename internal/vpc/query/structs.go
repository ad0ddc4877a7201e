package query

import (
	"fmt"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Tag is a key/value pair; HasValue distinguishes an absent Value from an
// empty one, which DeleteTags treats differently.
type Tag struct {
	Key      string
	Value    string
	HasValue bool
}

// TagSpecification is one TagSpecification.N.
type TagSpecification struct {
	ResourceType string
	Tags         []Tag
}

// Tags decodes name.N.Key / name.N.Value.
func (p Params) Tags(name string) ([]Tag, error) {
	var out []Tag
	for i, m := range p.Members(name) {
		key, ok := m["Key"]
		if !ok {
			return nil, apierr.Missing(fmt.Sprintf("%s.%d.Key", name, i+1))
		}
		v, has := m["Value"]
		out = append(out, Tag{Key: key, Value: v, HasValue: has})
	}
	return out, nil
}

// TagSpecifications decodes TagSpecification.N.ResourceType and
// TagSpecification.N.Tag.M.Key/Value.
func (p Params) TagSpecifications() ([]TagSpecification, error) {
	var out []TagSpecification
	for i, m := range p.Members("TagSpecification") {
		rt, err := m.Required("ResourceType")
		if err != nil {
			return nil, apierr.Missing(fmt.Sprintf("TagSpecification.%d.ResourceType", i+1))
		}
		tags, err := m.Tags("Tag")
		if err != nil {
			return nil, err
		}
		out = append(out, TagSpecification{ResourceType: rt, Tags: tags})
	}
	return out, nil
}

// Filters decodes Filter.N.Name and Filter.N.Value.M.
func (p Params) Filters() ([]Filter, error) {
	var out []Filter
	for i, m := range p.Members("Filter") {
		name, ok := m["Name"]
		if !ok || name == "" {
			return nil, apierr.Missing(fmt.Sprintf("Filter.%d.Name", i+1))
		}
		out = append(out, Filter{Name: name, Values: m.List("Value")})
	}
	return out, nil
}
