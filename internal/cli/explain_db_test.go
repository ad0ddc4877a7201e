package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/testenv"
	vpcrds "github.com/podsg/podsg/internal/vpc/rds"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// oneDB is the local VPC's RDS with one instance: real instances need PostgreSQL and root,
// and --db reads only DescribeDBInstances.
type oneDB struct{ db vpcrds.DBInstance }

var errReadOnly = errors.New("this test's RDS only describes")

func (o oneDB) Describe(id string) ([]*vpcrds.DBInstance, error) {
	if id != "" && id != o.db.ID {
		return nil, vpcrds.ErrNotFound
	}
	return []*vpcrds.DBInstance{&o.db}, nil
}

func (oneDB) Create(context.Context, vpcrds.CreateInput) (*vpcrds.DBInstance, error) {
	return nil, errReadOnly
}
func (oneDB) Delete(context.Context, string) (*vpcrds.DBInstance, error) { return nil, errReadOnly }
func (oneDB) Modify(context.Context, string, vpcrds.ModifyInput) (*vpcrds.DBInstance, error) {
	return nil, errReadOnly
}

// TestExplainDB runs `podsg explain pod --db` against a real apiserver and the local VPC's
// IAM and RDS APIs: a pod whose role may connect as app (but which its token may not assume),
// one whose role may not connect at all, and the answer on AWS, where only the local VPC
// answers. TestAWSCLIRDSIAMAuth (internal/vpc/conformance) runs it on a real database and a
// role the pod's token assumes.
func TestExplainDB(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	env := testenv.Start(t, testenv.Options{})
	vpc := vpctest.Start(t, vpctest.Options{DBs: oneDB{vpcrds.DBInstance{ID: "orders", Status: vpcrds.StatusAvailable, Engine: "postgres",
		Address: "10.0.1.4", Port: 5432, ResourceID: "db-ORDERS1", IAMAuth: true}}})
	c := vpc.IAM()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	for _, role := range []string{"may", "may-not"} {
		if _, err := c.CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String(role), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
			t.Fatalf("CreateRole: %v", err)
		}
	}
	allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"arn:aws:rds-db:us-west-2:` +
		state.AccountID + `:dbuser:db-ORDERS1/app"}]}`
	if _, err := c.PutRolePolicy(t.Context(), &iam.PutRolePolicyInput{RoleName: aws.String("may"), PolicyName: aws.String("connect"), PolicyDocument: aws.String(allow)}); err != nil {
		t.Fatalf("PutRolePolicy: %v", err)
	}
	controllertest.Create(t, env.Client, podWithRole("may"), podWithRole("may-not"))

	resource := "arn:aws:rds-db:us-west-2:" + state.AccountID + ":dbuser:db-ORDERS1/app"
	tests := map[string]struct {
		args []string
		want []string
	}{
		"a role that may": {[]string{"default/may", "--ec2-endpoint", vpc.URL, "--db", "orders"}, []string{
			"  database:         orders (DbiResourceId db-ORDERS1, IAM database authentication enabled)\n",
			"  rds-db:connect:   as app: ALLOWED on " + resource + " (allowed by statement 1 of inline policy connect)\n",
			"Role arn:aws:iam::" + state.AccountID + ":role/may may rds-db:connect to orders (DbiResourceId db-ORDERS1) as app.",
			// The role trusts EC2 only, and no provider is registered for the apiserver's
			// issuer, which explain read from the cluster.
			`  assume role:      system:serviceaccount:default:default (audience "sts.amazonaws.com"): DENIED by STS (no OIDC provider is registered ` +
				"for the cluster's issuer https://127.0.0.1:",
		}},
		"a role that may not": {[]string{"default/may-not", "--ec2-endpoint", vpc.URL, "--db", "orders", "--db-user", "app"}, []string{
			"  rds-db:connect:   as app: DENIED on " + resource + " (no statement allows it (implicit deny))\n",
			`The database answers PAM authentication failed for user "app".`,
		}},
		"no such instance": {[]string{"default/may", "--ec2-endpoint", vpc.URL, "--db", "nope"}, []string{
			"  rds-db:connect:   nope: unknown (describing DB instance nope: ", "DBInstanceNotFound",
		}},
		"on AWS": {[]string{"default/may", "--db", "orders"}, []string{
			`  assume role:      system:serviceaccount:default:default (audience "sts.amazonaws.com"): unknown (only the local VPC answers --db`,
			"  rds-db:connect:   orders: unknown (only the local VPC answers --db",
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"explain", "pod", "--kubeconfig", env.Kubeconfig, "--region", vpctest.Region}, tc.args...)
			if code := Run(t.Context(), args, &out, &errOut); code != 0 {
				t.Fatalf("exit code %d, stderr:\n%s", code, errOut.String())
			}
			for _, l := range tc.want {
				if !strings.Contains(out.String(), l) {
					t.Errorf("output lacks %q:\n%s", l, out.String())
				}
			}
		})
	}
	var out, errOut bytes.Buffer
	args := []string{"explain", "pod", "default/may", "--kubeconfig", env.Kubeconfig, "--db-user", "app"}
	if code := Run(t.Context(), args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "--db-user needs --db") {
		t.Fatalf("--db-user alone: exit code %d, stderr %q", code, errOut.String())
	}
}

// podWithRole is a pod as the pod identity webhook leaves it for role.
func podWithRole(role string) *corev1.Pod {
	p := controllertest.Pod("default", role, "")
	p.Spec.Containers[0].Env = []corev1.EnvVar{
		{Name: podidentity.EnvRoleARN, Value: "arn:aws:iam::" + state.AccountID + ":role/" + role},
		{Name: podidentity.EnvTokenFile, Value: podidentity.MountPath + "/token"},
	}
	return p
}
