package explain

import (
	"context"
)

// RDSAuthorizer decides whether an IAM role may rds-db:connect to a database, the permission
// RDS IAM database authentication checks, and as which database users. It is the seam of
// `podsg explain pod --db`: PolicyAuthorizer answers from the role's policies as the local
// VPC's IAM evaluates them.
type RDSAuthorizer interface {
	MayConnect(ctx context.Context, roleARN string, db RDSTarget) (RDSAnswer, error)
	// MayAssume says whether STS lets the pod's token assume the role
	// (AssumeRoleWithWebIdentity): without that, the pod never gets the role's credentials.
	MayAssume(ctx context.Context, roleARN string, id WebIdentity) (TrustAnswer, error)
}

// WebIdentity is the pod's token as STS sees it: the cluster's issuer, the pod's
// ServiceAccount as subject, and the audience of its token volume.
type WebIdentity struct {
	// Issuer is the cluster's service-account issuer (https://…), the tokens' iss.
	Issuer   string
	Subject  string // system:serviceaccount:NS:NAME
	Audience string
}

// TrustAnswer is whether STS exchanges the pod's token for the role's credentials.
type TrustAnswer struct {
	// Provider is the IAM OIDC provider ARN the issuer maps to (registered or not).
	Provider string
	Allowed  bool
	// Reason names the trust policy statement that decides, or what STS answers instead
	// (no provider for the issuer, an audience that is not a client ID).
	Reason string
}

// RDSTarget is a database and, optionally, a user the pod connects as.
type RDSTarget struct {
	// InstanceID is the DB instance identifier (podsg-demo-postgres), not its DbiResourceId.
	InstanceID string
	// User is asked about besides the users the role's policies name; "" for those only.
	User string
}

// RDSAnswer is an authorizer's answer for one database.
type RDSAnswer struct {
	// ResourceID is the instance's DbiResourceId, the part of the dbuser ARN IAM sees.
	ResourceID string
	// IAMAuth: the instance has IAM database authentication enabled; without it no token works.
	IAMAuth bool
	// Users are the verdicts, one a database user: the one asked about, then each the role's
	// policies name for this database (as written, "*" for any).
	Users []RDSDecision
	// Evaluator says who decided and what it could not see.
	Evaluator string
}

// RDSDecision is the verdict for one database user.
type RDSDecision struct {
	User string
	// Resource is what was evaluated: arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI-RESOURCE-ID/USER.
	Resource string
	Allowed  bool
	// Reason names the deciding statement (an explicit Deny, an Allow) or says that none allows.
	Reason string
}

// RDSAccess is the answer for the pod's role, or why there is none.
type RDSAccess struct {
	Target  RDSTarget
	RoleARN string
	Answer  RDSAnswer
	// Err is set when the authorizer could not decide; NoRole when the pod has no role to ask about.
	Err    string
	NoRole bool
	// Identity is the pod's token as asked about, Trust STS's answer to it, or TrustErr why
	// there is none.
	Identity WebIdentity
	Trust    *TrustAnswer
	TrustErr string
}

// allowedUsers are the users the role may connect as.
func (a *RDSAccess) allowedUsers() []string {
	var out []string
	for _, d := range a.Answer.Users {
		if d.Allowed {
			out = append(out, d.User)
		}
	}
	return out
}

// CheckRDS asks authz whether the role the pod's containers use may connect to db, and
// whether the pod's token may assume that role at all (issuer is the cluster's
// service-account issuer, issuerErr why it could not be read), and records the answers in the
// report. Call it after Gather.
func (r *Report) CheckRDS(ctx context.Context, authz RDSAuthorizer, db RDSTarget, issuer string, issuerErr error) {
	a := &RDSAccess{Target: db, RoleARN: r.Identity.podRole()}
	r.Identity.RDS = a
	if a.RoleARN == "" {
		a.NoRole = true
		return
	}
	a.Identity = WebIdentity{Issuer: issuer, Subject: "system:serviceaccount:" + r.Pod.Namespace + ":" + r.Pod.ServiceAccount,
		Audience: r.Identity.tokenAudience()}
	if issuerErr != nil {
		a.TrustErr = "the cluster's service-account issuer could not be read: " + issuerErr.Error()
	} else if trust, err := authz.MayAssume(ctx, a.RoleARN, a.Identity); err != nil {
		a.TrustErr = err.Error()
	} else {
		a.Trust = &trust
	}
	ans, err := authz.MayConnect(ctx, a.RoleARN, db)
	if err != nil {
		a.Err = err.Error()
		return
	}
	a.Answer = ans
}
