package explain

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// fakeRDS describes one instance: RDS instances need PostgreSQL and root, and what this
// test is about is IAM.
type fakeRDS struct{ db rdstypes.DBInstance }

func (f fakeRDS) DescribeDBInstances(_ context.Context, in *rds.DescribeDBInstancesInput, _ ...func(*rds.Options)) (*rds.DescribeDBInstancesOutput, error) {
	if aws.ToString(in.DBInstanceIdentifier) != aws.ToString(f.db.DBInstanceIdentifier) {
		return nil, &rdstypes.DBInstanceNotFoundFault{Message: aws.String("DBInstance " + aws.ToString(in.DBInstanceIdentifier) + " not found.")}
	}
	return &rds.DescribeDBInstancesOutput{DBInstances: []rdstypes.DBInstance{f.db}}, nil
}

const (
	dbi          = "db-EXPLAINTEST"
	connectTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
)

// TestPolicyAuthorizerLocalVPC asks about roles of the local VPC's IAM: one that may connect
// (as some users, not as one its attached policy denies), one whose policy names another
// database only, one with no policy. Each verdict is also the local STS's own (Authorize, the
// check behind RDS IAM database authentication).
func TestPolicyAuthorizerLocalVPC(t *testing.T) {
	vpc := vpctest.Start(t, vpctest.Options{})
	c := vpc.IAM()
	ctx := t.Context()
	arn := func(id, user string) string {
		return "arn:aws:rds-db:us-west-2:" + state.AccountID + ":dbuser:" + id + "/" + user
	}
	createRole(t, c, "may", map[string]string{"connect": `{"Version":"2012-10-17","Statement":[{"Sid":"Connect","Effect":"Allow","Action":"rds-db:connect",` +
		`"Resource":["` + arn(dbi, "app") + `","` + arn("db-*", "report_*") + `","` + arn("db-OTHER", "other") + `"]}]}`})
	deny, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("no-admin"), PolicyDocument: aws.String(
		`{"Version":"2012-10-17","Statement":[{"Sid":"NoAdmin","Effect":"Deny","Action":"rds-db:*","Resource":"` + arn("*", "admin") + `"},` +
			`{"Effect":"Allow","Action":"rds-db:connect","Resource":"` + arn(dbi, "ad*") + `"}]}`)})
	if err != nil {
		t.Fatalf("CreatePolicy: %v", err)
	}
	if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("may"), PolicyArn: deny.Policy.Arn}); err != nil {
		t.Fatalf("AttachRolePolicy: %v", err)
	}
	createRole(t, c, "elsewhere", map[string]string{"connect": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"` + arn("db-OTHER", "app") + `"}]}`})
	createRole(t, c, "nothing", nil)

	authz := &PolicyAuthorizer{IAM: c, Region: vpctest.Region, Now: vpc.Clock.Now,
		RDS: fakeRDS{rdstypes.DBInstance{DBInstanceIdentifier: aws.String("orders"), DbiResourceId: aws.String(dbi), IAMDatabaseAuthenticationEnabled: aws.Bool(true)}}}
	type verdict struct {
		user    string
		allowed bool
		reason  string
	}
	tests := map[string]struct {
		role, user string
		want       []verdict
	}{
		"may, named users": {"may", "", []verdict{
			{"app", true, "allowed by statement Connect of inline policy connect"},
			{"report_*", true, "allowed by statement Connect of inline policy connect"},
			{"admin", false, "explicitly denied by statement NoAdmin of policy arn:aws:iam::" + state.AccountID + ":policy/no-admin"},
			{"ad*", true, "allowed by statement 2 of policy arn:aws:iam::" + state.AccountID + ":policy/no-admin"},
		}},
		"may, as a user asked about": {"may", "report_eu", []verdict{
			{"report_eu", true, "allowed by statement Connect"}, {"app", true, ""}, {"report_*", true, ""}, {"admin", false, ""}, {"ad*", true, ""},
		}},
		"may not: another database's":    {"elsewhere", "", nil},
		"may not: as a user asked about": {"elsewhere", "app", []verdict{{"app", false, "no statement allows it (implicit deny)"}}},
		"may not: no policy":             {"nothing", "app", []verdict{{"app", false, "no statement allows it"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			roleARN := "arn:aws:iam::" + state.AccountID + ":role/" + tc.role
			ans, err := authz.MayConnect(ctx, roleARN, RDSTarget{InstanceID: "orders", User: tc.user})
			if err != nil {
				t.Fatalf("MayConnect: %v", err)
			}
			if ans.ResourceID != dbi || !ans.IAMAuth {
				t.Errorf("instance = %s, IAM auth %v; want %s, true", ans.ResourceID, ans.IAMAuth, dbi)
			}
			if len(ans.Users) != len(tc.want) {
				t.Fatalf("users = %+v, want %+v", ans.Users, tc.want)
			}
			for i, w := range tc.want {
				got := ans.Users[i]
				if got.User != w.user || got.Allowed != w.allowed || !strings.Contains(got.Reason, w.reason) || got.Resource != arn(dbi, w.user) {
					t.Errorf("user %d = %+v, want %+v on %s", i, got, w, arn(dbi, w.user))
				}
				caller := query.Caller{Account: state.AccountID, ARN: "arn:aws:sts::" + state.AccountID + ":assumed-role/" + tc.role + "/s",
					UserID: "AROA:s", RoleName: tc.role, SessionName: "s"}
				if d, err := vpc.STS.Authorize(caller, "rds-db:connect", got.Resource, nil); err != nil || (d == iampolicy.Allowed) != got.Allowed {
					t.Errorf("the local STS decides %v (%v) on %s; explain says allowed=%v", d, err, got.Resource, got.Allowed)
				}
			}
		})
	}
}

func TestPolicyAuthorizerErrors(t *testing.T) {
	vpc := vpctest.Start(t, vpctest.Options{})
	createRole(t, vpc.IAM(), "may", nil)
	authz := &PolicyAuthorizer{IAM: vpc.IAM(), Region: vpctest.Region,
		RDS: fakeRDS{rdstypes.DBInstance{DBInstanceIdentifier: aws.String("orders"), DbiResourceId: aws.String(dbi)}}}
	for name, tc := range map[string]struct{ role, db, want string }{
		"no such instance": {"arn:aws:iam::" + state.AccountID + ":role/may", "missing", "describing DB instance missing: "},
		"no such role":     {"arn:aws:iam::" + state.AccountID + ":role/gone", "orders", "reading role gone: "},
		"not a role ARN":   {"rds-db-access", "orders", `role "rds-db-access" is not an IAM role ARN`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := authz.MayConnect(t.Context(), tc.role, RDSTarget{InstanceID: tc.db}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("MayConnect = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func createRole(t *testing.T, c *iam.Client, name string, inline map[string]string) {
	t.Helper()
	if _, err := c.CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(connectTrust)}); err != nil {
		t.Fatalf("CreateRole %s: %v", name, err)
	}
	for pn, doc := range inline {
		if _, err := c.PutRolePolicy(t.Context(), &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc)}); err != nil {
			t.Fatalf("PutRolePolicy %s/%s: %v", name, pn, err)
		}
	}
}

// TestPolicyAuthorizerTrust asks, of roles of the local VPC's IAM, what the local STS decides
// for a pod's token (the same iampolicy.WebIdentity request): the ServiceAccount the trust
// policy names, another one, a wildcard over the namespace, a role for EC2, an audience that
// is not the provider's client ID, an issuer with no provider, a role that does not exist.
func TestPolicyAuthorizerTrust(t *testing.T) {
	vpc := vpctest.Start(t, vpctest.Options{})
	c := vpc.IAM()
	const issuer, host = "https://oidc.example/cluster/", "oidc.example/cluster"
	provider := "arn:aws:iam::" + state.AccountID + ":oidc-provider/" + host
	if _, err := c.CreateOpenIDConnectProvider(t.Context(), &iam.CreateOpenIDConnectProviderInput{Url: aws.String(issuer),
		ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{strings.Repeat("ab", 20)}}); err != nil {
		t.Fatalf("CreateOpenIDConnectProvider: %v", err)
	}
	// statement is a trust policy statement for the provider's tokens whose sub matches (op).
	statement := func(effect, sid, op, sub string) string {
		return `{"Sid":"` + sid + `","Effect":"` + effect + `","Principal":{"Federated":"` + provider + `"},"Action":"sts:AssumeRoleWithWebIdentity",` +
			`"Condition":{"` + op + `":{"` + host + `:sub":"` + sub + `","` + host + `:aud":"sts.amazonaws.com"}}}`
	}
	doc := func(statements ...string) string {
		return `{"Version":"2012-10-17","Statement":[` + strings.Join(statements, ",") + `]}`
	}
	for name, doc := range map[string]string{
		"app":     doc(statement("Allow", "", "StringEquals", "system:serviceaccount:shop:app")),
		"shop":    doc(statement("Allow", "", "StringLike", "system:serviceaccount:shop:*")),
		"for-ec2": connectTrust,
		"deny-app": doc(statement("Deny", "NotApp", "StringEquals", "system:serviceaccount:shop:app"),
			statement("Allow", "", "StringLike", "system:serviceaccount:shop:*")),
	} {
		if _, err := c.CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(doc)}); err != nil {
			t.Fatalf("CreateRole %s: %v", name, err)
		}
	}
	authz := &PolicyAuthorizer{IAM: c, Region: vpctest.Region, Now: vpc.Clock.Now}
	sa := func(name string) WebIdentity {
		return WebIdentity{Issuer: issuer, Subject: "system:serviceaccount:shop:" + name, Audience: "sts.amazonaws.com"}
	}
	tests := map[string]struct {
		role    string
		id      WebIdentity
		allowed bool
		reason  string
	}{
		"the ServiceAccount it names": {"app", sa("app"), true, "allowed by statement 1 of the trust policy"},
		"another ServiceAccount":      {"app", sa("reports"), false, "no statement allows it (implicit deny): STS answers AccessDenied"},
		"any of the namespace":        {"shop", sa("reports"), true, "allowed by statement 1 of the trust policy"},
		"another namespace":           {"shop", WebIdentity{Issuer: issuer, Subject: "system:serviceaccount:web:app", Audience: "sts.amazonaws.com"}, false, "STS answers AccessDenied"},
		"a role for EC2":              {"for-ec2", sa("app"), false, "no statement allows it (implicit deny): STS answers AccessDenied"},
		"denied by name":              {"deny-app", sa("app"), false, "explicitly denied by statement NotApp of the trust policy: STS answers AccessDenied"},
		"the rest of the namespace":   {"deny-app", sa("reports"), true, "allowed by statement 2 of the trust policy"},
		"an audience that is no client ID": {"app", WebIdentity{Issuer: issuer, Subject: "system:serviceaccount:shop:app", Audience: "vault"}, false,
			`the token's audience "vault" is not a client ID of OIDC provider ` + provider + " (sts.amazonaws.com): STS answers InvalidIdentityToken"},
		"an issuer without a provider": {"app", WebIdentity{Issuer: "https://other.example", Subject: "system:serviceaccount:shop:app", Audience: "sts.amazonaws.com"}, false,
			"no OIDC provider is registered for the cluster's issuer https://other.example: STS answers InvalidIdentityToken"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := authz.MayAssume(t.Context(), "arn:aws:iam::"+state.AccountID+":role/"+tc.role, tc.id)
			if err != nil {
				t.Fatalf("MayAssume: %v", err)
			}
			if got.Allowed != tc.allowed || !strings.Contains(got.Reason, tc.reason) {
				t.Fatalf("MayAssume = %+v, want allowed=%v, reason containing %q", got, tc.allowed, tc.reason)
			}
		})
	}
	if _, err := authz.MayAssume(t.Context(), "arn:aws:iam::"+state.AccountID+":role/gone", sa("app")); err == nil || !strings.Contains(err.Error(), "reading role gone: ") {
		t.Fatalf("MayAssume of a role that does not exist = %v", err)
	}
}
