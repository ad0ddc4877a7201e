package sts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/idgen"
	"github.com/podsg/podsg/internal/vpc/oidc"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Version and Namespace of the STS API.
const (
	Version   = "2011-06-15"
	Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// STS error codes.
const (
	CodeInvalidIdentityToken = "InvalidIdentityToken"
	CodeExpiredToken         = "ExpiredTokenException"
	CodeIDPCommunication     = "IDPCommunicationError"
	CodeAccessDenied         = "AccessDenied"
	CodeValidationError      = "ValidationError"
)

// Options configure an STS.
type Options struct {
	Store *state.Store
	// Now defaults to time.Now; IDs to crypto random.
	Now func() time.Time
	IDs idgen.Source
}

// STS issues, resolves and authorises temporary credentials.
type STS struct {
	store    *state.Store
	keys     *keys
	verifier *oidc.Verifier
	now      func() time.Time
}

// New returns the STS of store, creating its token key on first use.
func New(ctx context.Context, o Options) (*STS, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.IDs == nil {
		o.IDs = idgen.Crypto{}
	}
	var key []byte
	if err := o.Store.Update(ctx, false, func(tx *state.Tx) error { key = tx.IAMSecret("sts-session-tokens", 32); return nil }); err != nil {
		return nil, fmt.Errorf("reading the STS key: %w", err)
	}
	return &STS{store: o.Store, keys: &keys{key: key, ids: o.IDs, now: o.Now}, verifier: oidc.NewVerifier(o.Now), now: o.Now}, nil
}

// Resolve implements server.Sessions.
func (s *STS) Resolve(accessKeyID, token string) (string, query.Caller, error) {
	return s.keys.Resolve(accessKeyID, token)
}

// Service returns the STS Query API for the server.
func (s *STS) Service() *query.Service {
	r := query.NewRouter()
	r.Handle("AssumeRoleWithWebIdentity", s.assumeRoleWithWebIdentity)
	r.Handle("AssumeRole", s.assumeRole)
	r.Handle("GetCallerIdentity", s.getCallerIdentity)
	return &query.Service{Name: "AWSSecurityTokenService", Version: Version, Namespace: Namespace, AWSQuery: true, Router: r,
		Unsigned: []string{"AssumeRoleWithWebIdentity"}}
}

func stsError(code string, status int, format string, args ...any) *apierr.Error {
	return apierr.New(code, format, args...).WithStatus(status)
}

var sessionNamePattern = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)

// assumeInput is what AssumeRole and AssumeRoleWithWebIdentity share.
type assumeInput struct {
	role     *state.Role
	trust    *iampolicy.Policy
	session  string
	duration time.Duration
}

func (s *STS) readAssume(p query.Params, maxChained bool) (*assumeInput, error) {
	arn := p.String("RoleArn")
	if arn == "" {
		return nil, stsError(CodeValidationError, http.StatusBadRequest, "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
	}
	in := &assumeInput{session: p.String("RoleSessionName")}
	if !sessionNamePattern.MatchString(in.session) {
		return nil, stsError(CodeValidationError, http.StatusBadRequest,
			"1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64", in.session)
	}
	if p.Has("Policy") || len(p.List("PolicyArns.member")) > 0 {
		return nil, stsError(CodeValidationError, http.StatusBadRequest, "Session policies (Policy, PolicyArns) are not supported by the local STS.")
	}
	secs, err := p.IntIn("DurationSeconds", 3600, 900, 43200)
	if err != nil {
		return nil, stsError(CodeValidationError, http.StatusBadRequest, "1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200", p.String("DurationSeconds"))
	}
	in.duration = time.Duration(secs) * time.Second
	name, ok := roleName(arn)
	if ok {
		_ = s.store.View(func(tx *state.Tx) error {
			in.role, _ = tx.Role(name)
			return nil
		})
	}
	if in.role == nil || in.role.ARN != arn {
		return in, errNoRole
	}
	if in.trust, err = iampolicy.Parse(in.role.TrustPolicy, iampolicy.Trust); err != nil {
		return nil, fmt.Errorf("stored trust policy of %s: %w", in.role.Name, err)
	}
	if int(secs) > in.role.MaxSessionDuration {
		return nil, stsError(CodeValidationError, http.StatusBadRequest, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	if maxChained && secs > 3600 {
		return nil, stsError(CodeValidationError, http.StatusBadRequest, "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	return in, nil
}

// errNoRole is a role ARN that names no role: the caller is told it may
// not assume it, as STS says, not that it does not exist.
var errNoRole = errors.New("no such role")

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUserXML struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

func (s *STS) issue(in *assumeInput, source string) (credentialsXML, assumedRoleUserXML) {
	now := s.now()
	sess := Session{RoleName: in.role.Name, RoleID: in.role.ID, SessionName: in.session, Issued: now, Expires: now.Add(in.duration), Source: source}
	c := s.keys.mint(sess)
	return credentialsXML{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Expiration: query.Time(c.Expiration)},
		assumedRoleUserXML{Arn: sess.ARN(), AssumedRoleID: in.role.ID + ":" + in.session}
}

func (s *STS) assumeRoleWithWebIdentity(ctx context.Context, req *query.Request) (query.Response, error) {
	p := req.Params
	raw := p.String("WebIdentityToken")
	if len(raw) < 4 || len(raw) > 20000 {
		return nil, stsError(CodeValidationError, http.StatusBadRequest, "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint: Member must have length between 4 and 20000")
	}
	in, err := s.readAssume(p, false)
	denied := stsError(CodeAccessDenied, http.StatusForbidden, "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	if errors.Is(err, errNoRole) {
		return nil, denied
	}
	if err != nil {
		return nil, err
	}
	claims, prov, err := s.verifyWebIdentity(ctx, raw)
	if err != nil {
		return nil, err
	}
	aud := ""
	for _, a := range claims.Audience {
		if slices.Contains(prov.ClientIDs, a) {
			aud = a
			break
		}
	}
	if aud == "" {
		return nil, stsError(CodeInvalidIdentityToken, http.StatusBadRequest, "Incorrect token audience")
	}
	// The trust policy sees the provider as the principal and the token's
	// claims under the provider's name: <url>:sub, <url>:aud, <url>:amr.
	id := iampolicy.WebIdentity{ProviderARN: prov.ARN, ProviderURL: prov.URL, Subject: claims.Subject, Audience: aud, AMR: claims.AMR}
	decision := iampolicy.Evaluate(id.Request(in.role.ARN, s.now()), in.trust)
	if decision != iampolicy.Allowed {
		return nil, denied
	}
	creds, user := s.issue(in, "web-identity")
	return &struct {
		query.Result
		SubjectFromWebIdentityToken string             `xml:"SubjectFromWebIdentityToken"`
		Audience                    string             `xml:"Audience"`
		AssumedRoleUser             assumedRoleUserXML `xml:"AssumedRoleUser"`
		Credentials                 credentialsXML     `xml:"Credentials"`
		Provider                    string             `xml:"Provider"`
	}{SubjectFromWebIdentityToken: claims.Subject, Audience: aud, AssumedRoleUser: user, Credentials: creds, Provider: prov.URL}, nil
}

// verifyWebIdentity finds the token's provider by its issuer and verifies
// the token against the issuer's keys.
func (s *STS) verifyWebIdentity(ctx context.Context, raw string) (*oidc.Claims, *state.OIDCProvider, error) {
	iss, err := oidc.UnverifiedIssuer(raw)
	if err != nil {
		return nil, nil, stsError(CodeInvalidIdentityToken, http.StatusBadRequest, "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(iss, "https://"), "http://"), "/")
	var prov *state.OIDCProvider
	_ = s.store.View(func(tx *state.Tx) error {
		prov, _ = tx.OIDCProvider(state.IAMARN("oidc-provider/" + host))
		return nil
	})
	if prov == nil || host == iss {
		return nil, nil, stsError(CodeInvalidIdentityToken, http.StatusBadRequest, "No OpenIDConnect provider found in your account for %s", iss)
	}
	claims, err := s.verifier.Verify(ctx, raw, prov.Thumbprints)
	switch {
	case errors.Is(err, oidc.ErrExpired):
		return nil, nil, stsError(CodeExpiredToken, http.StatusBadRequest, "Token expired: %s", strings.TrimPrefix(err.Error(), oidc.ErrExpired.Error()+": "))
	case errors.Is(err, oidc.ErrUnreachable):
		return nil, nil, stsError(CodeIDPCommunication, http.StatusBadRequest, "Couldn't retrieve verification key from your identity provider, please reference AssumeRoleWithWebIdentity documentation for requirements")
	case errors.Is(err, oidc.ErrSignature):
		return nil, nil, stsError(CodeInvalidIdentityToken, http.StatusBadRequest, "Incorrect token signature")
	case err != nil:
		return nil, nil, stsError(CodeInvalidIdentityToken, http.StatusBadRequest, "%s", err.Error())
	}
	return claims, prov, nil
}

func (s *STS) assumeRole(_ context.Context, req *query.Request) (query.Response, error) {
	caller := req.Caller
	in, err := s.readAssume(req.Params, !caller.IsRoot())
	denied := stsError(CodeAccessDenied, http.StatusForbidden, "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.ARN, req.Params.String("RoleArn"))
	if errors.Is(err, errNoRole) {
		return nil, denied
	}
	if err != nil {
		return nil, err
	}
	if ok, err := s.mayAssume(caller, in); err != nil || !ok {
		if err != nil {
			return nil, err
		}
		return nil, denied
	}
	creds, user := s.issue(in, "assume-role")
	return &struct {
		query.Result
		AssumedRoleUser assumedRoleUserXML `xml:"AssumedRoleUser"`
		Credentials     credentialsXML     `xml:"Credentials"`
	}{AssumedRoleUser: user, Credentials: creds}, nil
}

// mayAssume applies AWS's rule within one account: a trust policy that
// names the caller (its session or its role) suffices; one that names only
// the account also needs the caller's own policies to allow sts:AssumeRole
// on the role (the root user's always do). An explicit deny anywhere wins.
func (s *STS) mayAssume(caller query.Caller, in *assumeInput) (bool, error) {
	var callerRole *state.Role
	if !caller.IsRoot() {
		_ = s.store.View(func(tx *state.Tx) error { callerRole, _ = tx.Role(caller.RoleName); return nil })
	}
	req := func(p iampolicy.Principal) *iampolicy.Request {
		return &iampolicy.Request{Principal: p, Action: "sts:AssumeRole", Resource: in.role.ARN,
			Context: iampolicy.NewContext(map[string][]string{"aws:PrincipalArn": {caller.ARN}, "aws:CurrentTime": {s.now().UTC().Format(time.RFC3339)}})}
	}
	full := principalOf(caller, callerRole)
	named := full
	named.Account = ""
	switch in.trust.Evaluate(req(full)) {
	case iampolicy.ExplicitDeny, iampolicy.ImplicitDeny:
		return false, nil
	}
	identity, err := s.Authorize(caller, "sts:AssumeRole", in.role.ARN, nil)
	if err != nil || identity == iampolicy.ExplicitDeny {
		return false, err
	}
	return in.trust.Evaluate(req(named)) == iampolicy.Allowed || identity == iampolicy.Allowed, nil
}

func (s *STS) getCallerIdentity(_ context.Context, req *query.Request) (query.Response, error) {
	c := req.Caller
	if c.Anonymous {
		return nil, stsError("MissingAuthenticationToken", http.StatusForbidden, "Request is missing Authentication Token")
	}
	return &struct {
		query.Result
		UserID  string `xml:"UserId"`
		Account string `xml:"Account"`
		Arn     string `xml:"Arn"`
	}{UserID: c.UserID, Account: c.Account, Arn: c.ARN}, nil
}

// InstanceCredentials issues credentials of the role in an instance
// profile, for the instance's metadata service (session name: the
// instance id, as EC2 names it). ok is false if the profile holds no role.
func (s *STS) InstanceCredentials(profileARN, instanceID string, ttl time.Duration) (Credentials, string, bool) {
	var role *state.Role
	_ = s.store.View(func(tx *state.Tx) error {
		p, ok := tx.InstanceProfileByARN(profileARN)
		if ok && len(p.Roles) > 0 {
			role, _ = tx.Role(p.Roles[0])
		}
		return nil
	})
	if role == nil {
		return Credentials{}, "", false
	}
	now := s.now()
	c := s.keys.mint(Session{RoleName: role.Name, RoleID: role.ID, SessionName: instanceID, Issued: now, Expires: now.Add(ttl), Source: "ec2"})
	return c, role.Name, true
}
