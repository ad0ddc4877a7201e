package query

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// maxIndex bounds list indices so a hostile request cannot make us allocate
// by index; lists are sparse maps anyway, this only rejects silly numbers.
const maxIndex = 100000

// Params are the decoded parameters of one request: one value per name,
// case-sensitive as EC2 treats them.
type Params map[string]string

// FromValues keeps the first value of every parameter. EC2 ignores
// repeated names; so do we.
func FromValues(v url.Values) Params {
	p := make(Params, len(v))
	for k, vals := range v {
		if len(vals) > 0 {
			p[k] = vals[0]
		}
	}
	return p
}

// Has reports whether the parameter was sent (possibly empty).
func (p Params) Has(name string) bool {
	_, ok := p[name]
	return ok
}

// String returns the parameter or "".
func (p Params) String(name string) string { return p[name] }

// Required returns the parameter or MissingParameter.
func (p Params) Required(name string) (string, error) {
	v, ok := p[name]
	if !ok || v == "" {
		return "", apierr.Missing(name)
	}
	return v, nil
}

// Int returns an integer parameter; ok is false when it was not sent.
func (p Params) Int(name string) (v int64, ok bool, err error) {
	s, ok := p[name]
	if !ok {
		return 0, false, nil
	}
	v, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if perr != nil {
		return 0, true, apierr.InvalidValue("Invalid value '%s' for %s. It must be an integer.", s, name)
	}
	return v, true, nil
}

// IntIn is Int with a range check and a default for absent parameters.
func (p Params) IntIn(name string, def, lo, hi int64) (int64, error) {
	v, ok, err := p.Int(name)
	if err != nil || !ok {
		return def, err
	}
	if v < lo || v > hi {
		return 0, apierr.InvalidValue("Value (%d) for parameter %s is invalid. Expected a value between %d and %d.", v, name, lo, hi)
	}
	return v, nil
}

// Bool returns a boolean parameter; ok is false when it was not sent.
func (p Params) Bool(name string) (v bool, ok bool, err error) {
	s, ok := p[name]
	if !ok {
		return false, false, nil
	}
	switch strings.ToLower(s) {
	case "true":
		return true, true, nil
	case "false":
		return false, true, nil
	}
	return false, true, apierr.InvalidValue("Invalid value '%s' for %s. It must be a boolean.", s, name)
}

// List returns the values of name.1, name.2, … in index order. Gaps are
// allowed; EC2 clients never send them but they do no harm.
func (p Params) List(name string) []string {
	type item struct {
		i int
		v string
	}
	var items []item
	prefix := name + "."
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if i, ok := parseIndex(rest); ok {
			items = append(items, item{i, v})
		}
	}
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.i, b.i) })
	out := make([]string, len(items))
	for n, it := range items {
		out[n] = it.v
	}
	return out
}

// Members returns the structures name.N.* as Params with the "name.N."
// prefix removed, in index order. IpPermissions.2.IpRanges.1.CidrIp becomes
// IpRanges.1.CidrIp in the second member.
func (p Params) Members(name string) []Params {
	byIndex := map[int]Params{}
	prefix := name + "."
	for k, v := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		idx, field, ok := strings.Cut(rest, ".")
		if !ok || field == "" {
			continue
		}
		i, ok := parseIndex(idx)
		if !ok {
			continue
		}
		m := byIndex[i]
		if m == nil {
			m = Params{}
			byIndex[i] = m
		}
		m[field] = v
	}
	keys := make([]int, 0, len(byIndex))
	for i := range byIndex {
		keys = append(keys, i)
	}
	slices.Sort(keys)
	out := make([]Params, len(keys))
	for n, i := range keys {
		out[n] = byIndex[i]
	}
	return out
}

// parseIndex accepts the decimal list indices EC2 clients send.
func parseIndex(s string) (int, bool) {
	if s == "" || len(s) > 6 {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(s)
	return i, err == nil && i <= maxIndex
}
