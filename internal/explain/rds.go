package explain

import (
	"context"
)

// RDSAuthorizer decides whether an IAM role may rds-db:connect to a database as a user, the
// permission RDS IAM database authentication checks. It is the seam of `podsg explain pod
// --db`: the local VPC's IAM policy evaluator (being written beside the local IAM and STS)
// will implement it, and on AWS IAM's policy simulator could. Until one exists, nothing calls
// CheckRDS and the CLI has no --db flag: explain says nothing it has not evaluated.
type RDSAuthorizer interface {
	MayConnect(ctx context.Context, roleARN string, db RDSTarget) (RDSDecision, error)
}

// RDSTarget is a database and the user a pod connects as.
type RDSTarget struct {
	// InstanceID is the DB instance identifier (podsg-demo-postgres), not its DbiResourceId.
	InstanceID string
	User       string
}

// RDSDecision is an authorizer's verdict.
type RDSDecision struct {
	// Resource is what was evaluated: arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI-RESOURCE-ID/USER.
	Resource string
	Allowed  bool
	// Reason names the deciding statement (an explicit Deny, an Allow) or says that none allows.
	Reason string
}

// RDSAccess is the answer for the pod's role, or why there is none.
type RDSAccess struct {
	Target   RDSTarget
	RoleARN  string
	Decision RDSDecision
	// Err is set when the authorizer could not decide; NoRole when the pod has no role to ask about.
	Err    string
	NoRole bool
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
	d, err := authz.MayConnect(ctx, a.RoleARN, db)
	if err != nil {
		a.Err = err.Error()
		return
	}
	a.Decision = d
}
