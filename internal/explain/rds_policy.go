package explain

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/podsg/podsg/internal/iampolicy"
)

// IAMPolicies is what PolicyAuthorizer reads of IAM: a role, its trust and identity policies,
// and OIDC providers (the SDK's IAM client has these methods).
type IAMPolicies interface {
	GetRole(ctx context.Context, in *iam.GetRoleInput, opts ...func(*iam.Options)) (*iam.GetRoleOutput, error)
	ListRolePolicies(ctx context.Context, in *iam.ListRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListRolePoliciesOutput, error)
	GetRolePolicy(ctx context.Context, in *iam.GetRolePolicyInput, opts ...func(*iam.Options)) (*iam.GetRolePolicyOutput, error)
	ListAttachedRolePolicies(ctx context.Context, in *iam.ListAttachedRolePoliciesInput, opts ...func(*iam.Options)) (*iam.ListAttachedRolePoliciesOutput, error)
	GetPolicy(ctx context.Context, in *iam.GetPolicyInput, opts ...func(*iam.Options)) (*iam.GetPolicyOutput, error)
	GetPolicyVersion(ctx context.Context, in *iam.GetPolicyVersionInput, opts ...func(*iam.Options)) (*iam.GetPolicyVersionOutput, error)
	GetOpenIDConnectProvider(ctx context.Context, in *iam.GetOpenIDConnectProviderInput, opts ...func(*iam.Options)) (*iam.GetOpenIDConnectProviderOutput, error)
}

// RDSInstances is what PolicyAuthorizer reads of RDS (the SDK's RDS client has it).
type RDSInstances interface {
	DescribeDBInstances(ctx context.Context, in *rds.DescribeDBInstancesInput, opts ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error)
}

// PolicyAuthorizer answers --db from the role's inline and attached policies, read with IAM's
// API and evaluated by the local VPC's policy evaluator (iampolicy) with the condition keys the
// local STS gives a role session. That is the whole of the local VPC's decision. On AWS it is
// not: permissions boundaries, SCPs and session policies also decide, and IAM's
// SimulatePrincipalPolicy, which sees them, cannot be tested here (the local IAM does not
// serve it), so the CLI uses this authorizer with the local VPC only.
type PolicyAuthorizer struct {
	IAM    IAMPolicies
	RDS    RDSInstances
	Region string
	// Now defaults to time.Now (aws:CurrentTime).
	Now func() time.Time
}

// namedPolicy is a parsed identity policy and how the output names it.
type namedPolicy struct {
	name   string
	policy *iampolicy.Policy
}

// MayConnect evaluates rds-db:connect on the database's dbuser ARN for db.User and for every
// user the role's policies name on it.
func (a *PolicyAuthorizer) MayConnect(ctx context.Context, roleARN string, db RDSTarget) (RDSAnswer, error) {
	account, roleName, err := parseRoleARN(roleARN)
	if err != nil {
		return RDSAnswer{}, err
	}
	out, err := a.instance(ctx, db.InstanceID)
	if err != nil {
		return RDSAnswer{}, err
	}
	role, err := a.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(roleName)})
	if err != nil {
		return RDSAnswer{}, fmt.Errorf("reading role %s: %w", roleName, err)
	}
	policies, err := a.rolePolicies(ctx, roleName)
	if err != nil {
		return RDSAnswer{}, err
	}
	req := &iampolicy.Request{
		Principal: iampolicy.Principal{Type: "AWS", IDs: []string{roleARN}, Account: account},
		Action:    "rds-db:connect",
		Context:   a.sessionContext(roleARN, account, role.Role),
	}
	resource := func(user string) string {
		return fmt.Sprintf("arn:aws:rds-db:%s:%s:dbuser:%s/%s", a.Region, account, out.ResourceID, user)
	}
	for _, user := range candidateUsers(db.User, policies) {
		req.Resource = resource(user)
		d, applies := decide(req, policies)
		d.User = user
		// A user the policies name for another database only is not one of this database's.
		if user == db.User || applies {
			out.Users = append(out.Users, d)
		}
	}
	return out, nil
}

// MayAssume evaluates the role's trust policy as the local STS does for a verified token of
// id (iampolicy.WebIdentity): the issuer must be registered as an OIDC provider with the
// token's audience among its client IDs, and the trust policy must allow the provider's
// sts:AssumeRoleWithWebIdentity under the token's sub and aud. The token's signature and
// expiry are not in question: the apiserver issues and the kubelet refreshes it.
func (a *PolicyAuthorizer) MayAssume(ctx context.Context, roleARN string, id WebIdentity) (TrustAnswer, error) {
	account, roleName, err := parseRoleARN(roleARN)
	if err != nil {
		return TrustAnswer{}, err
	}
	host := strings.TrimSuffix(strings.TrimPrefix(id.Issuer, "https://"), "/")
	out := TrustAnswer{Provider: "arn:aws:iam::" + account + ":oidc-provider/" + host}
	role, err := a.IAM.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(roleName)})
	if err != nil {
		return TrustAnswer{}, fmt.Errorf("reading role %s: %w", roleName, err)
	}
	prov, err := a.IAM.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(out.Provider)})
	var missing *iamtypes.NoSuchEntityException
	switch {
	case errors.As(err, &missing):
		out.Reason = "no OIDC provider is registered for the cluster's issuer " + id.Issuer + ": STS answers InvalidIdentityToken"
		return out, nil
	case err != nil:
		return TrustAnswer{}, fmt.Errorf("reading OIDC provider %s: %w", out.Provider, err)
	case !slices.Contains(prov.ClientIDList, id.Audience):
		out.Reason = fmt.Sprintf("the token's audience %q is not a client ID of OIDC provider %s (%s): STS answers InvalidIdentityToken",
			id.Audience, out.Provider, strings.Join(prov.ClientIDList, ", "))
		return out, nil
	}
	raw, err := url.QueryUnescape(aws.ToString(role.Role.AssumeRolePolicyDocument))
	if err != nil {
		return TrustAnswer{}, fmt.Errorf("decoding the trust policy of role %s: %w", roleName, err)
	}
	trust, err := iampolicy.Parse(raw, iampolicy.Trust)
	if err != nil {
		return TrustAnswer{}, fmt.Errorf("parsing the trust policy of role %s: %w", roleName, err)
	}
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	req := iampolicy.WebIdentity{ProviderARN: out.Provider, ProviderURL: host, Subject: id.Subject, Audience: id.Audience}.Request(roleARN, now)
	d, _ := decide(req, []namedPolicy{{name: "the trust policy", policy: trust}})
	out.Allowed, out.Reason = d.Allowed, d.Reason
	if !d.Allowed {
		out.Reason += ": STS answers AccessDenied"
	}
	return out, nil
}

func (a *PolicyAuthorizer) instance(ctx context.Context, id string) (RDSAnswer, error) {
	res, err := a.RDS.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(id)})
	if err != nil {
		return RDSAnswer{}, fmt.Errorf("describing DB instance %s: %w", id, err)
	}
	if len(res.DBInstances) != 1 {
		return RDSAnswer{}, fmt.Errorf("describing DB instance %s: %d instances in the answer", id, len(res.DBInstances))
	}
	db := res.DBInstances[0]
	return RDSAnswer{
		ResourceID: aws.ToString(db.DbiResourceId),
		IAMAuth:    aws.ToBool(db.IAMDatabaseAuthenticationEnabled),
		Evaluator: "the role's inline and attached policies, evaluated as the local VPC's IAM does; " +
			"conditions on the session's own keys (aws:userid, source address) do not hold here",
	}, nil
}

// rolePolicies reads and parses the role's inline policies, then its attached ones (their
// default version), as the local STS evaluates them.
func (a *PolicyAuthorizer) rolePolicies(ctx context.Context, roleName string) ([]namedPolicy, error) {
	var out []namedPolicy
	inline := iam.NewListRolePoliciesPaginator(a.IAM, &iam.ListRolePoliciesInput{RoleName: aws.String(roleName)})
	for inline.HasMorePages() {
		page, err := inline.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the inline policies of role %s: %w", roleName, err)
		}
		for _, name := range page.PolicyNames {
			doc, err := a.IAM.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: aws.String(roleName), PolicyName: aws.String(name)})
			if err != nil {
				return nil, fmt.Errorf("reading inline policy %s of role %s: %w", name, roleName, err)
			}
			p, err := parsePolicy("inline policy "+name, doc.PolicyDocument)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	attached, err := a.attachedPolicies(ctx, roleName)
	return append(out, attached...), err
}

func (a *PolicyAuthorizer) attachedPolicies(ctx context.Context, roleName string) ([]namedPolicy, error) {
	var out []namedPolicy
	pages := iam.NewListAttachedRolePoliciesPaginator(a.IAM, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String(roleName)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing the attached policies of role %s: %w", roleName, err)
		}
		for _, ap := range page.AttachedPolicies {
			arn := aws.ToString(ap.PolicyArn)
			pol, err := a.IAM.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: ap.PolicyArn})
			if err != nil {
				return nil, fmt.Errorf("reading policy %s: %w", arn, err)
			}
			v, err := a.IAM.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: ap.PolicyArn, VersionId: pol.Policy.DefaultVersionId})
			if err != nil {
				return nil, fmt.Errorf("reading the default version of policy %s: %w", arn, err)
			}
			p, err := parsePolicy("policy "+arn, v.PolicyVersion.Document)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
	}
	return out, nil
}

// parsePolicy decodes a document as IAM returns it (URL-encoded JSON).
func parsePolicy(name string, doc *string) (namedPolicy, error) {
	raw, err := url.QueryUnescape(aws.ToString(doc))
	if err != nil {
		return namedPolicy{}, fmt.Errorf("decoding %s: %w", name, err)
	}
	p, err := iampolicy.Parse(raw, iampolicy.Identity)
	if err != nil {
		return namedPolicy{}, fmt.Errorf("parsing %s: %w", name, err)
	}
	return namedPolicy{name: name, policy: p}, nil
}

// sessionContext is the global condition keys the local STS gives a session of the role.
func (a *PolicyAuthorizer) sessionContext(roleARN, account string, role *iamtypes.Role) *iampolicy.Context {
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	ctx := iampolicy.NewContext(map[string][]string{
		"aws:PrincipalArn":     {roleARN},
		"aws:PrincipalAccount": {account},
		"aws:PrincipalType":    {"AssumedRole"},
		"aws:CurrentTime":      {now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":        {strconv.FormatInt(now.Unix(), 10)},
		"aws:RequestedRegion":  {a.Region},
		"aws:SecureTransport":  {"false"},
	})
	if role != nil {
		for _, t := range role.Tags {
			ctx.Set("aws:PrincipalTag/"+aws.ToString(t.Key), aws.ToString(t.Value))
		}
	}
	return ctx
}

// decide evaluates req as IAM does (an explicit Deny wins, then an Allow, else implicit deny)
// and names the deciding statement; applies: some statement allows or denies it.
func decide(req *iampolicy.Request, policies []namedPolicy) (d RDSDecision, applies bool) {
	d = RDSDecision{Resource: req.Resource, Reason: "no statement allows it (implicit deny)"}
	for _, p := range policies {
		for i, st := range p.policy.Statements {
			one := &iampolicy.Policy{Version: p.policy.Version, Statements: []iampolicy.Statement{st}}
			switch one.Evaluate(req) {
			case iampolicy.ExplicitDeny:
				return RDSDecision{Resource: req.Resource, Reason: "explicitly denied by " + statementName(p.name, i, st)}, true
			case iampolicy.Allowed:
				if !d.Allowed {
					d.Allowed, d.Reason = true, "allowed by "+statementName(p.name, i, st)
				}
			}
		}
	}
	return d, d.Allowed
}

func statementName(policy string, i int, st iampolicy.Statement) string {
	if st.Sid != "" {
		return fmt.Sprintf("statement %s of %s", st.Sid, policy)
	}
	return fmt.Sprintf("statement %d of %s", i+1, policy)
}

// candidateUsers are asked (the user first, when given) and every user part of an
// rds-db dbuser ARN in a statement's Resource, as written.
func candidateUsers(asked string, policies []namedPolicy) []string {
	var out []string
	seen := map[string]bool{}
	add := func(u string) {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	if asked != "" {
		add(asked)
	}
	for _, p := range policies {
		for _, st := range p.policy.Statements {
			for _, r := range st.Resource {
				if u, ok := dbUser(r); ok {
					add(u)
				}
			}
		}
	}
	return out
}

// dbUser reads USER of arn:aws:rds-db:REGION:ACCOUNT:dbuser:ID/USER (with wildcards); a bare
// "*" resource names every user.
func dbUser(resource string) (string, bool) {
	if resource == "*" {
		return "*", true
	}
	parts := strings.SplitN(resource, ":", 7)
	if len(parts) != 7 || parts[2] != "rds-db" || parts[5] != "dbuser" {
		return "", false
	}
	_, user, ok := strings.Cut(parts[6], "/")
	return user, ok && user != ""
}

// parseRoleARN reads arn:aws:iam::ACCOUNT:role/PATH/NAME.
func parseRoleARN(arn string) (account, name string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return "", "", errors.New("role " + strconv.Quote(arn) + " is not an IAM role ARN")
	}
	rest := parts[5]
	return parts[4], rest[strings.LastIndex(rest, "/")+1:], nil
}
