package iampolicy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// setQualifier is ForAnyValue: or ForAllValues:, for multivalued keys.
type setQualifier uint8

const (
	single setQualifier = iota
	forAnyValue
	forAllValues
)

// operator is a parsed condition operator name.
type operator struct {
	base     string // e.g. "StringLike", with Not folded into negated
	negated  bool   // StringNotEquals, NotIpAddress, …: several values AND, a missing key holds
	ifExists bool
	set      setQualifier
	// cmp is the positive comparison of a request value against a policy value.
	cmp func(reqVal, policyVal string, vars *Context) bool
}

// comparisons by positive base name; the negated forms map to these.
var comparisons = map[string]func(reqVal, policyVal string, vars *Context) bool{
	"StringEquals": func(r, p string, vars *Context) bool {
		pat, ok := compile(p, false, vars, false)
		return ok && pat.match(r, false)
	},
	"StringEqualsIgnoreCase": func(r, p string, vars *Context) bool {
		pat, ok := compile(p, false, vars, false)
		return ok && pat.match(r, true)
	},
	"StringLike": func(r, p string, vars *Context) bool {
		pat, ok := compile(p, true, vars, false)
		return ok && pat.match(r, false)
	},
	"NumericEquals":            numeric(func(a, b float64) bool { return a == b }),
	"NumericLessThan":          numeric(func(a, b float64) bool { return a < b }),
	"NumericLessThanEquals":    numeric(func(a, b float64) bool { return a <= b }),
	"NumericGreaterThan":       numeric(func(a, b float64) bool { return a > b }),
	"NumericGreaterThanEquals": numeric(func(a, b float64) bool { return a >= b }),
	"DateEquals":               date(func(a, b time.Time) bool { return a.Equal(b) }),
	"DateLessThan":             date(func(a, b time.Time) bool { return a.Before(b) }),
	"DateLessThanEquals":       date(func(a, b time.Time) bool { return !a.After(b) }),
	"DateGreaterThan":          date(func(a, b time.Time) bool { return a.After(b) }),
	"DateGreaterThanEquals":    date(func(a, b time.Time) bool { return !a.Before(b) }),
	"Bool": func(r, p string, _ *Context) bool {
		return strings.EqualFold(r, p)
	},
	"BinaryEquals": func(r, p string, _ *Context) bool { return r == p },
	"IpAddress": func(r, p string, _ *Context) bool {
		ip, err := netip.ParseAddr(r)
		pfx, ok := parseIPOrCIDR(p)
		return err == nil && ok && pfx.Contains(ip.Unmap())
	},
	"ArnLike": func(r, p string, vars *Context) bool {
		return matchARN(p, r, vars)
	},
}

// negations maps each negated operator to its positive base.
var negations = map[string]string{
	"StringNotEquals":           "StringEquals",
	"StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
	"StringNotLike":             "StringLike",
	"NumericNotEquals":          "NumericEquals",
	"DateNotEquals":             "DateEquals",
	"NotIpAddress":              "IpAddress",
	"ArnNotEquals":              "ArnLike",
	"ArnNotLike":                "ArnLike",
}

// validators check policy values at parse time, so that a policy that
// could never match for a typo is refused, as IAM refuses it.
var validators = map[string]func(string) bool{
	"Numeric":   func(v string) bool { _, err := strconv.ParseFloat(v, 64); return err == nil },
	"Date":      func(v string) bool { _, ok := parseDate(v); return ok },
	"Bool":      func(v string) bool { return strings.EqualFold(v, "true") || strings.EqualFold(v, "false") },
	"IpAddress": func(v string) bool { _, ok := parseIPOrCIDR(v); return ok },
	"Null":      func(v string) bool { return strings.EqualFold(v, "true") || strings.EqualFold(v, "false") },
}

func parseOperator(name string) (operator, error) {
	var op operator
	rest := name
	switch {
	case strings.HasPrefix(rest, "ForAnyValue:"):
		op.set, rest = forAnyValue, strings.TrimPrefix(rest, "ForAnyValue:")
	case strings.HasPrefix(rest, "ForAllValues:"):
		op.set, rest = forAllValues, strings.TrimPrefix(rest, "ForAllValues:")
	}
	if r, ok := strings.CutSuffix(rest, "IfExists"); ok && rest != "Null" {
		op.ifExists, rest = true, r
	}
	if rest == "ArnEquals" {
		rest = "ArnLike" // the two are the same test: both take wildcards per segment
	}
	if pos, ok := negations[rest]; ok {
		op.negated, rest = true, pos
	}
	op.base = rest
	if rest == "Null" {
		if op.ifExists || op.set != single {
			return op, malformed("Invalid Condition type : %s", name)
		}
		return op, nil
	}
	cmp, ok := comparisons[rest]
	if !ok {
		return op, malformed("Invalid Condition type : %s", name)
	}
	op.cmp = cmp
	return op, nil
}

func (op operator) validate(values []string) bool {
	for prefix, ok := range validators {
		if !strings.HasPrefix(op.base, prefix) {
			continue
		}
		for _, v := range values {
			if !ok(v) {
				return false
			}
		}
	}
	return true
}

// holds evaluates one condition against the request context. vars is nil
// when the policy's version does not substitute variables.
func (c *Condition) holds(ctx, vars *Context) bool {
	reqVals, present := ctx.Get(c.Key)
	op := c.op
	if op.base == "Null" {
		return slices.ContainsFunc(c.Values, func(v string) bool { return strings.EqualFold(v, "true") != present })
	}
	if !present {
		// A missing key fails a positive test and passes a negated one;
		// IfExists passes; ForAllValues holds over the empty set.
		return op.ifExists || op.negated || op.set == forAllValues
	}
	// one tests a single request value: positive operators hold if it
	// matches any policy value (OR); negated ones if it matches none.
	one := func(r string) bool {
		for _, p := range c.Values {
			if op.cmp(r, p, vars) {
				return !op.negated
			}
		}
		return op.negated
	}
	return op.overValues(reqVals, one)
}

// overValues applies the set qualifier: ForAllValues needs every request
// value to pass, ForAnyValue one. A single-valued operator on a key with
// several values: a positive test needs one of them to match, a negated
// one needs none to (every value passes "matches none").
func (op operator) overValues(reqVals []string, one func(string) bool) bool {
	all := op.set == forAllValues || (op.set == single && op.negated)
	for _, r := range reqVals {
		if one(r) != all {
			return !all
		}
	}
	return all
}

func numeric(f func(a, b float64) bool) func(string, string, *Context) bool {
	return func(r, p string, _ *Context) bool {
		a, err1 := strconv.ParseFloat(r, 64)
		b, err2 := strconv.ParseFloat(p, 64)
		return err1 == nil && err2 == nil && f(a, b)
	}
}

func date(f func(a, b time.Time) bool) func(string, string, *Context) bool {
	return func(r, p string, _ *Context) bool {
		a, ok1 := parseDate(r)
		b, ok2 := parseDate(p)
		return ok1 && ok2 && f(a, b)
	}
}

// parseDate reads the forms IAM accepts: ISO 8601 (with or without
// seconds, zone, or time at all) and epoch seconds.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

func parseIPOrCIDR(s string) (netip.Prefix, bool) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), true
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	return netip.Prefix{}, false
}

// matchARN is the ARN operators' test: each of the six colon-separated
// parts is matched on its own, wildcards within a part (the resource part
// keeps its colons).
func matchARN(pat, arn string, vars *Context) bool {
	pp := strings.SplitN(pat, ":", 6)
	ap := strings.SplitN(arn, ":", 6)
	if len(pp) != 6 || len(ap) != 6 {
		return false
	}
	for i := range pp {
		p, ok := compile(pp[i], true, vars, false)
		if !ok || !p.match(ap[i], false) {
			return false
		}
	}
	return true
}
