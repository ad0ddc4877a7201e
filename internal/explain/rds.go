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
// records the answer in the report. Call it after Gather.
func (r *Report) CheckRDS(ctx context.Context, authz RDSAuthorizer, db RDSTarget) {
	a := &RDSAccess{Target: db, RoleARN: r.Identity.podRole()}
	r.Identity.RDS = a
	if a.RoleARN == "" {
		a.NoRole = true
		return
	}
	ans, err := authz.MayConnect(ctx, a.RoleARN, db)
	if err != nil {
		a.Err = err.Error()
		return
	}
	a.Answer = ans
}
