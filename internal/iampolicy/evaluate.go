package iampolicy

import (
	"slices"
	"strings"
)

// Decision is the outcome of evaluating policies for one request.
type Decision int

const (
	// ImplicitDeny: no statement allows the request (and none denies it).
	ImplicitDeny Decision = iota
	// Allowed: some statement allows it and none denies it.
	Allowed
	// ExplicitDeny: a statement denies it, whatever else allows it.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "allowed"
	case ExplicitDeny:
		return "explicitly denied"
	}
	return "implicitly denied"
}

// Principal is who makes a request, as resource-based policies' Principal
// elements name it.
type Principal struct {
	// Type is the Principal element's key: "AWS", "Federated" or "Service".
	Type string
	// IDs are the identifiers that name it in a Principal element: for a
	// role session its session ARN and its role's ARN; for a web identity
	// the OIDC provider's ARN; for a service its name (ec2.amazonaws.com).
	IDs []string
	// Account is matched by an AWS principal given as the account id or as
	// arn:aws:iam::ACCOUNT:root ("" for none).
	Account string
}

// Request is what is asked: may Principal do Action on Resource, given the
// Context (condition keys, also the source of policy variables).
type Request struct {
	Principal Principal
	Action    string
	Resource  string
	Context   *Context
}

// Evaluate combines policies as AWS does within one account: an explicit
// Deny in any of them wins, else an Allow in any of them allows, else the
// request is implicitly denied.
func Evaluate(req *Request, policies ...*Policy) Decision {
	d := ImplicitDeny
	for _, p := range policies {
		switch p.Evaluate(req) {
		case ExplicitDeny:
			return ExplicitDeny
		case Allowed:
			d = Allowed
		}
	}
	return d
}

// Evaluate is the policy's own decision for req.
func (p *Policy) Evaluate(req *Request) Decision {
	var vars *Context
	if p.Version == Version2012 {
		vars = req.Context
		if vars == nil {
			vars = &Context{}
		}
	}
	d := ImplicitDeny
	for i := range p.Statements {
		st := &p.Statements[i]
		if !st.applies(req, vars) {
			continue
		}
		if st.Effect == Deny {
			return ExplicitDeny
		}
		d = Allowed
	}
	return d
}

// applies reports whether every element of the statement matches req.
func (st *Statement) applies(req *Request, vars *Context) bool {
	switch {
	case st.Principal != nil && !st.Principal.matches(req.Principal):
		return false
	case st.NotPrincipal != nil && st.NotPrincipal.matches(req.Principal):
		return false
	case st.Action != nil && !slices.ContainsFunc(st.Action, func(a string) bool { return matchAction(a, req.Action) }):
		return false
	case st.NotAction != nil && slices.ContainsFunc(st.NotAction, func(a string) bool { return matchAction(a, req.Action) }):
		return false
	case st.Resource != nil && !slices.ContainsFunc(st.Resource, func(r string) bool { return matchResource(r, req.Resource, vars) }):
		return false
	case st.NotResource != nil && slices.ContainsFunc(st.NotResource, func(r string) bool { return matchResource(r, req.Resource, vars) }):
		return false
	}
	for i := range st.Conditions {
		if !st.Conditions[i].holds(req.Context, vars) {
			return false
		}
	}
	return true
}

// matches reports whether the Principal element names p.
func (ps Principals) matches(p Principal) bool {
	if _, ok := ps["*"]; ok {
		return true
	}
	for _, id := range ps[p.Type] {
		if id == "*" || slices.Contains(p.IDs, id) {
			return true
		}
		if p.Type == "AWS" && p.Account != "" && (id == p.Account || id == "arn:aws:iam::"+p.Account+":root") {
			return true
		}
		// Service principals compare case-insensitively, as IAM stores them.
		if p.Type == "Service" && slices.ContainsFunc(p.IDs, func(s string) bool { return strings.EqualFold(s, id) }) {
			return true
		}
	}
	return false
}
