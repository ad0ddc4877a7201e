package sts

import (
	"strconv"
	"strings"
	"time"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Authorize decides whether caller may do action on resource (e.g.
// rds-db:connect on arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI-RESOURCE-ID/USER),
// with extra condition keys besides the global ones it sets. A role
// session is allowed what its role's inline and attached policies allow,
// now (a policy changed after the session began applies at once, as on
// AWS); the account's root is allowed everything; an anonymous caller
// nothing.
func (s *STS) Authorize(caller query.Caller, action, resource string, extra map[string][]string) (iampolicy.Decision, error) {
	switch {
	case caller.Anonymous:
		return iampolicy.ImplicitDeny, nil
	case caller.IsRoot():
		return iampolicy.Allowed, nil
	}
	var role *state.Role
	var policies []*iampolicy.Policy
	err := s.store.View(func(tx *state.Tx) error {
		r, lookupErr := tx.Role(caller.RoleName)
		if lookupErr != nil {
			return nil //nolint:nilerr // a deleted role allows nothing: role stays nil
		}
		role = r
		var err error
		policies, err = rolePolicies(tx, role)
		return err
	})
	if err != nil || role == nil {
		return iampolicy.ImplicitDeny, err
	}
	ctx := s.principalContext(caller, role)
	for k, v := range extra {
		ctx.Set(k, v...)
	}
	req := &iampolicy.Request{Principal: principalOf(caller, role), Action: action, Resource: resource, Context: ctx}
	return iampolicy.Evaluate(req, policies...), nil
}

// rolePolicies are a role's identity policies: inline, then attached.
func rolePolicies(tx *state.Tx, r *state.Role) ([]*iampolicy.Policy, error) {
	var out []*iampolicy.Policy
	for _, doc := range r.InlinePolicies {
		p, err := iampolicy.Parse(doc, iampolicy.Identity)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	for _, arn := range r.AttachedPolicies {
		mp, err := tx.Policy(arn)
		if err != nil {
			continue // detached concurrently: nothing to add
		}
		p, err := iampolicy.Parse(mp.Default(), iampolicy.Identity)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// principalContext is the global condition keys of a role session.
func (s *STS) principalContext(caller query.Caller, role *state.Role) *iampolicy.Context {
	now := s.now()
	ctx := iampolicy.NewContext(map[string][]string{
		"aws:PrincipalArn":     {role.ARN},
		"aws:PrincipalAccount": {state.AccountID},
		"aws:PrincipalType":    {"AssumedRole"},
		"aws:userid":           {caller.UserID},
		"aws:CurrentTime":      {now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":        {strconv.FormatInt(now.Unix(), 10)},
		"aws:RequestedRegion":  {s.store.Region()},
		"aws:SecureTransport":  {"false"},
	})
	for k, v := range role.Tags {
		ctx.Set("aws:PrincipalTag/"+k, v)
	}
	return ctx
}

// principalOf is how a resource policy's Principal names the caller.
func principalOf(caller query.Caller, role *state.Role) iampolicy.Principal {
	if role == nil {
		return iampolicy.Principal{Type: "AWS", IDs: []string{caller.ARN}, Account: caller.Account}
	}
	return iampolicy.Principal{Type: "AWS", IDs: []string{caller.ARN, role.ARN}, Account: caller.Account}
}

// roleName reads a role ARN of this account.
func roleName(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:iam::"+state.AccountID+":role/")
	if !ok || rest == "" {
		return "", false
	}
	return rest[strings.LastIndex(rest, "/")+1:], true
}
