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
