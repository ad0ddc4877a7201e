package iamapi

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Version and Namespace of the IAM API.
const (
	Version   = "2010-05-08"
	Namespace = "https://iam.amazonaws.com/doc/2010-05-08/"
)

// IAM's error codes besides the entity ones in package state.
const (
	CodeValidationError   = "ValidationError"
	CodeMalformedPolicy   = "MalformedPolicyDocument"
	CodeInvalidInput      = "InvalidInput"
	CodeServiceFailure    = "ServiceFailure"
	codeLimitExceededIAM  = state.CodeLimitExceeded
	maxManagedPolicySize  = 6144  // characters, IAM's quota
	maxInlineRoleSize     = 10240 // all inline policies of a role together
	maxTrustPolicySize    = 2048  // default quota of a role trust policy
	defaultMaxSessionSecs = 3600
)

// API holds the handlers.
type API struct {
	store *state.Store
}

// Service returns the IAM service for the server.
func Service(store *state.Store) *query.Service {
	a := &API{store: store}
	r := query.NewRouter()
	for action, h := range map[string]query.Handler{
		"CreateOpenIDConnectProvider":           a.createOIDCProvider,
		"GetOpenIDConnectProvider":              a.getOIDCProvider,
		"ListOpenIDConnectProviders":            a.listOIDCProviders,
		"DeleteOpenIDConnectProvider":           a.deleteOIDCProvider,
		"UpdateOpenIDConnectProviderThumbprint": a.updateOIDCProviderThumbprint,
		"CreateRole":                            a.createRole,
		"GetRole":                               a.getRole,
		"ListRoles":                             a.listRoles,
		"DeleteRole":                            a.deleteRole,
		"UpdateAssumeRolePolicy":                a.updateAssumeRolePolicy,
		"PutRolePolicy":                         a.putRolePolicy,
		"GetRolePolicy":                         a.getRolePolicy,
		"ListRolePolicies":                      a.listRolePolicies,
		"DeleteRolePolicy":                      a.deleteRolePolicy,
		"CreatePolicy":                          a.createPolicy,
		"GetPolicy":                             a.getPolicy,
		"GetPolicyVersion":                      a.getPolicyVersion,
		"ListPolicies":                          a.listPolicies,
		"DeletePolicy":                          a.deletePolicy,
		"AttachRolePolicy":                      a.attachRolePolicy,
		"DetachRolePolicy":                      a.detachRolePolicy,
		"ListAttachedRolePolicies":              a.listAttachedRolePolicies,
		"CreateInstanceProfile":                 a.createInstanceProfile,
		"GetInstanceProfile":                    a.getInstanceProfile,
		"ListInstanceProfiles":                  a.listInstanceProfiles,
		"DeleteInstanceProfile":                 a.deleteInstanceProfile,
		"AddRoleToInstanceProfile":              a.addRoleToInstanceProfile,
		"RemoveRoleFromInstanceProfile":         a.removeRoleFromInstanceProfile,
	} {
		r.Handle(action, h)
	}
	return &query.Service{Name: "AmazonIAM", Version: Version, Namespace: Namespace, AWSQuery: true, Router: r}
}

// empty is the result of actions that return nothing.
type empty struct{ query.Result }

func (a *API) update(ctx context.Context, fn func(tx *state.Tx) error) error {
	return a.store.Update(ctx, false, fn)
}

// validation is IAM's ValidationError for one parameter.
func validation(format string, args ...any) error {
	return apierr.New(CodeValidationError, "1 validation error detected: "+format, args...)
}

// required returns a parameter or IAM's "must not be null" ValidationError;
// field is the member name as IAM spells it in messages (roleName).
func required(p query.Params, name string) (string, error) {
	v := p.String(name)
	if v == "" {
		return "", validation("Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(name))
	}
	return v, nil
}

func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

var namePattern = regexp.MustCompile(`^[\w+=,.@-]+$`)

// name reads an entity name: IAM's pattern [\w+=,.@-]+ and a maximum length.
func name(p query.Params, param string, maxLen int) (string, error) {
	v, err := required(p, param)
	if err != nil {
		return "", err
	}
	if len(v) > maxLen {
		return "", validation("Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", v, lowerFirst(param), maxLen)
	}
	if !namePattern.MatchString(v) {
		return "", validation("Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", v, lowerFirst(param))
	}
	return v, nil
}

var pathPattern = regexp.MustCompile(`^(/|/[\x21-\x7E]+/)$`)

// path reads Path (default "/"): it starts and ends with a slash.
func path(p query.Params) (string, error) {
	v := p.String("Path")
	if v == "" {
		return "/", nil
	}
	if len(v) > 512 || !pathPattern.MatchString(v) {
		return "", validation("Value '%s' at 'path' failed to satisfy constraint: Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)", v)
	}
	return v, nil
}

// policyDocument reads and checks a document parameter of the given kind.
func policyDocument(p query.Params, param string, kind iampolicy.Kind, maxLen int) (string, error) {
	doc, err := required(p, param)
	if err != nil {
		return "", err
	}
	if n := len(strings.Join(strings.Fields(doc), "")); n > maxLen {
		return "", apierr.New(codeLimitExceededIAM, "Cannot exceed quota for PolicySize: %d", maxLen).WithStatus(http.StatusConflict)
	}
	if _, err := iampolicy.Parse(doc, kind); err != nil {
		return "", apierr.New(CodeMalformedPolicy, "%s", err.Error())
	}
	return doc, nil
}

// encodeDocument is how IAM returns a policy document: URL-encoded
// (RFC 3986), which awscli decodes and the SDKs hand over as is.
func encodeDocument(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20")
}

// tags reads Tags.member.N.Key/Value.
func tags(p query.Params) (state.Tags, []tagXML, error) {
	members := p.Members("Tags.member")
	if len(members) == 0 {
		return nil, nil, nil
	}
	if len(members) > 50 {
		return nil, nil, apierr.New(codeLimitExceededIAM, "Cannot exceed quota for TagsPerRole: 50").WithStatus(http.StatusConflict)
	}
	out := state.Tags{}
	var list []tagXML
	for _, m := range members {
		k := m.String("Key")
		if k == "" || len(k) > 128 {
			return nil, nil, validation("Value '%s' at 'tags.member.key' failed to satisfy constraint: Member must have length between 1 and 128", k)
		}
		out[k] = m.String("Value")
		list = append(list, tagXML{Key: k, Value: m.String("Value")})
	}
	return out, list, nil
}

// page is IAM's Marker/MaxItems pagination over items sorted by key.
func page[T any](p query.Params, items []T, key func(T) string) ([]T, bool, string, error) {
	pg := query.Page{MaxResults: 100}
	if p.Has("MaxItems") {
		n, _, err := p.Int("MaxItems")
		if err != nil || n < 1 || n > 1000 {
			return nil, false, "", validation("Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000", p.String("MaxItems"))
		}
		pg.MaxResults = int(n)
	}
	if m := p.String("Marker"); m != "" {
		dec, err := query.Params{"NextToken": m}.ParsePage(1, 1000)
		if err != nil {
			return nil, false, "", apierr.New(CodeInvalidInput, "Invalid Marker.")
		}
		pg.After = dec.After
	}
	out, next := query.Paginate(items, key, pg)
	return out, next != "", next, nil
}
