package query

import (
	"strings"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// Filter is one Filter.N: it matches when any of its values matches any of
// the resource's values for Name. Values may use the EC2 wildcards * and ?.
type Filter struct {
	Name   string
	Values []string
}

// Fields returns a resource's values for a filter name; known is false for
// names the resource type does not support.
type Fields func(name string) (values []string, known bool)

// Match reports whether every filter matches (filters are ANDed, values
// within one filter ORed). An unsupported filter name is InvalidParameterValue
// rather than silently matching everything, so client typos surface.
func Match(filters []Filter, fields Fields) (bool, error) {
	for _, f := range filters {
		vals, known := fields(f.Name)
		if !known {
			return false, apierr.InvalidValue("The filter '%s' is invalid", f.Name)
		}
		if !f.matchesAny(vals) {
			return false, nil
		}
	}
	return true, nil
}

// ValidateNames rejects filter names that fields does not know, even when
// there is nothing to match against.
func ValidateNames(filters []Filter, fields Fields) error {
	for _, f := range filters {
		if _, known := fields(f.Name); !known {
			return apierr.InvalidValue("The filter '%s' is invalid", f.Name)
		}
	}
	return nil
}

func (f Filter) matchesAny(vals []string) bool {
	for _, want := range f.Values {
		for _, have := range vals {
			if Glob(want, have) {
				return true
			}
		}
	}
	return false
}

// TagFields answers the tag filters every taggable resource supports:
// tag:KEY, tag-key and tag-value.
func TagFields(tags map[string]string, name string) ([]string, bool) {
	if key, ok := strings.CutPrefix(name, "tag:"); ok {
		if v, ok := tags[key]; ok {
			return []string{v}, true
		}
		return nil, true
	}
	switch name {
	case "tag-key":
		out := make([]string, 0, len(tags))
		for k := range tags {
			out = append(out, k)
		}
		return out, true
	case "tag-value":
		out := make([]string, 0, len(tags))
		for _, v := range tags {
			out = append(out, v)
		}
		return out, true
	}
	return nil, false
}

// Literal reports whether an EC2 filter pattern has no wildcard or escape, so it matches
// only itself.
func Literal(pattern string) bool { return !strings.ContainsAny(pattern, `*?\`) }

// Glob matches s against an EC2 filter pattern: * is any run of characters,
// ? any single character, and a backslash escapes the next one.
func Glob(pattern, s string) bool {
	if Literal(pattern) {
		return pattern == s
	}
	p, str := []rune(pattern), []rune(s)
	// Iterative matcher with single-star backtracking: linear in practice
	// and no recursion for fuzzed input.
	pi, si, starP, starS := 0, 0, -1, 0
	for si < len(str) {
		if pi < len(p) {
			switch c := p[pi]; {
			case c == '*':
				starP, starS = pi, si
				pi++
				continue
			case c == '?':
				pi++
				si++
				continue
			case c == '\\' && pi+1 < len(p):
				if p[pi+1] == str[si] {
					pi += 2
					si++
					continue
				}
			case c == str[si]:
				pi++
				si++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		pi, si = starP+1, starS
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
