package iampolicy

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Policy versions. Only 2012-10-17 substitutes policy variables; in a
// 2008-10-17 policy (or one without Version) ${…} is literal text, as on AWS.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Kind is what a policy document is attached to, which decides the
// elements it may (and must) have.
type Kind int

const (
	// Identity policies (managed and inline) name no principal and need a
	// Resource or NotResource.
	Identity Kind = iota
	// Trust is a role's trust policy (a resource-based policy on the role):
	// it needs a Principal or NotPrincipal and may not name a Resource.
	Trust
)

// Effect of a statement.
type Effect string

// Effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Policy is a parsed policy document.
type Policy struct {
	Version    string
	ID         string
	Statements []Statement
}

// Statement is one statement; nil slices are absent elements.
type Statement struct {
	Sid          string
	Effect       Effect
	Principal    Principals
	NotPrincipal Principals
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Conditions   []Condition
}

// Principals is a Principal element: principal type ("AWS", "Federated",
// "Service", "CanonicalUser", or "*" for the bare wildcard) → identifiers.
type Principals map[string][]string

// Condition is one operator and key with its values, e.g.
// StringEquals "oidc.example:sub" ["system:serviceaccount:ns:sa"].
type Condition struct {
	Operator string // as written, e.g. "ForAnyValue:StringLikeIfExists"
	Key      string
	Values   []string
	op       operator
}

// MalformedError is a document that is not a valid policy; its message is
// what IAM answers with MalformedPolicyDocument.
type MalformedError struct{ Msg string }

func (e *MalformedError) Error() string { return e.Msg }

func malformed(format string, args ...any) error {
	return &MalformedError{Msg: fmt.Sprintf(format, args...)}
}

// IsMalformed reports whether err is a MalformedError.
func IsMalformed(err error) bool {
	var m *MalformedError
	return errors.As(err, &m)
}

// Parse reads and validates a policy document of the given kind.
func Parse(doc string, kind Kind) (*Policy, error) {
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil || dec.More() {
		return nil, malformed("Syntax errors in policy.")
	}
	p, stmts, err := parseTop(top)
	if err != nil {
		return nil, err
	}
	list, err := statementList(stmts)
	if err != nil {
		return nil, err
	}
	for _, raw := range list {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, malformed("Syntax errors in policy.")
		}
		st, err := parseStatement(m, kind)
		if err != nil {
			return nil, err
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

// parseTop reads Version and Id and returns the Statement element.
func parseTop(top map[string]any) (*Policy, any, error) {
	p := &Policy{}
	var stmts any
	for k, v := range top {
		switch k {
		case "Version":
			s, ok := v.(string)
			if !ok || (s != Version2012 && s != Version2008) {
				return nil, nil, malformed("The policy failed legacy parsing")
			}
			p.Version = s
		case "Id":
			s, ok := v.(string)
			if !ok {
				return nil, nil, malformed("Syntax errors in policy.")
			}
			p.ID = s
		case "Statement":
			stmts = v
		default:
			return nil, nil, malformed("Syntax errors in policy.")
		}
	}
	return p, stmts, nil
}

func statementList(stmts any) ([]any, error) {
	switch s := stmts.(type) {
	case map[string]any:
		return []any{s}, nil
	case []any:
		if len(s) > 0 {
			return s, nil
		}
	}
	return nil, malformed("Syntax errors in policy.")
}

// MustParse is Parse for documents known to be valid (tests, built-ins).
func MustParse(doc string, kind Kind) *Policy {
	p, err := Parse(doc, kind)
	if err != nil {
		panic(err)
	}
	return p
}

func parseStatement(m map[string]any, kind Kind) (Statement, error) {
	var st Statement
	var err error
	for k, v := range m {
		switch k {
		case "Sid":
			s, ok := v.(string)
			if !ok {
				return st, malformed("Syntax errors in policy.")
			}
			st.Sid = s
		case "Effect":
			s, _ := v.(string)
			if s != string(Allow) && s != string(Deny) {
				return st, malformed("Invalid effect: %v", v)
			}
			st.Effect = Effect(s)
		case "Principal":
			st.Principal, err = parsePrincipals(v)
		case "NotPrincipal":
			st.NotPrincipal, err = parsePrincipals(v)
		case "Action":
			st.Action, err = parseActions(v)
		case "NotAction":
			st.NotAction, err = parseActions(v)
		case "Resource":
			st.Resource, err = stringList(v)
		case "NotResource":
			st.NotResource, err = stringList(v)
		case "Condition":
			st.Conditions, err = parseConditions(v)
		default:
			return st, malformed("Syntax errors in policy.")
		}
		if err != nil {
			return st, err
		}
	}
	return st, st.validate(m, kind)
}

func (st *Statement) validate(m map[string]any, kind Kind) error {
	has := func(k string) bool { _, ok := m[k]; return ok }
	switch {
	case st.Effect == "":
		return malformed("Missing required field Effect")
	case has("Action") && has("NotAction"), has("Resource") && has("NotResource"), has("Principal") && has("NotPrincipal"):
		return malformed("Syntax errors in policy.")
	case !has("Action") && !has("NotAction"):
		return malformed("Missing required field Action")
	}
	return kindRules(has, kind)
}

// kindRules: identity policies name resources and no principal, trust
// policies the other way round.
func kindRules(has func(string) bool, kind Kind) error {
	principal, resource := has("Principal") || has("NotPrincipal"), has("Resource") || has("NotResource")
	switch {
	case kind == Identity && principal:
		return malformed("Policy document should not specify a principal.")
	case kind == Identity && !resource:
		return malformed("Missing required field Resource")
	case kind == Trust && resource:
		return malformed("Has prohibited field Resource")
	case kind == Trust && !principal:
		return malformed("Missing required field Principal")
	}
	return nil
}

// stringList reads a string or an array of strings.
func stringList(v any) ([]string, error) {
	switch s := v.(type) {
	case string:
		return []string{s}, nil
	case []any:
		out := make([]string, 0, len(s))
		for _, e := range s {
			str, ok := e.(string)
			if !ok {
				return nil, malformed("Syntax errors in policy.")
			}
			out = append(out, str)
		}
		if len(out) == 0 {
			return nil, malformed("Syntax errors in policy.")
		}
		return out, nil
	}
	return nil, malformed("Syntax errors in policy.")
}

func parseActions(v any) ([]string, error) {
	acts, err := stringList(v)
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		if a == "*" {
			continue
		}
		svc, name, ok := strings.Cut(a, ":")
		if !ok || svc == "" || name == "" || strings.ContainsAny(svc, "*?") {
			return nil, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
		}
	}
	return acts, nil
}

func parsePrincipals(v any) (Principals, error) {
	if s, ok := v.(string); ok {
		if s != "*" {
			return nil, malformed("Invalid principal in policy: %q", s)
		}
		return Principals{"*": {"*"}}, nil
	}
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		return nil, malformed("Syntax errors in policy.")
	}
	out := Principals{}
	for typ, ids := range m {
		if !slices.Contains([]string{"AWS", "Federated", "Service", "CanonicalUser"}, typ) {
			return nil, malformed("Invalid principal in policy: %q", typ)
		}
		list, err := stringList(ids)
		if err != nil {
			return nil, err
		}
		for _, id := range list {
			// A wildcard is allowed only on its own ("AWS": "*").
			if id != "*" && strings.ContainsAny(id, "*?") {
				return nil, malformed("Invalid principal in policy: %q:%q", typ, id)
			}
		}
		out[typ] = list
	}
	return out, nil
}

func parseConditions(v any) ([]Condition, error) {
	ops, ok := v.(map[string]any)
	if !ok {
		return nil, malformed("Syntax errors in policy.")
	}
	var out []Condition
	for opName, body := range ops {
		op, err := parseOperator(opName)
		if err != nil {
			return nil, err
		}
		keys, ok := body.(map[string]any)
		if !ok {
			return nil, malformed("Syntax errors in policy.")
		}
		for key, raw := range keys {
			vals, err := conditionValues(raw)
			if err != nil {
				return nil, err
			}
			if !op.validate(vals) {
				return nil, malformed("Invalid value for condition %s on key %s: %s", opName, key, strings.Join(vals, ", "))
			}
			if !strings.Contains(key, ":") {
				return nil, malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")
			}
			out = append(out, Condition{Operator: opName, Key: key, Values: vals, op: op})
		}
	}
	// Map order is random; a stable order keeps String and tests deterministic.
	slices.SortFunc(out, func(a, b Condition) int {
		return strings.Compare(a.Operator+"\x00"+a.Key, b.Operator+"\x00"+b.Key)
	})
	return out, nil
}

// conditionValues reads a condition's value or values; booleans and
// numbers are taken as their JSON text, as IAM does.
func conditionValues(v any) ([]string, error) {
	one := func(e any) (string, bool) {
		switch x := e.(type) {
		case string:
			return x, true
		case bool:
			return fmt.Sprint(x), true
		case json.Number:
			return x.String(), true
		}
		return "", false
	}
	if arr, ok := v.([]any); ok {
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			s, ok := one(e)
			if !ok {
				return nil, malformed("Syntax errors in policy.")
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, ok := one(v)
	if !ok {
		return nil, malformed("Syntax errors in policy.")
	}
	return []string{s}, nil
}
