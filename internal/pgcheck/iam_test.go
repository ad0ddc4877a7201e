package pgcheck_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/podsg/podsg/internal/pgcheck"
	"github.com/podsg/podsg/internal/vpc/oidc/oidctest"
	"github.com/podsg/podsg/internal/vpc/rdsiam"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/sts"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// sessionKeys resolves a token's key as the local VPC's RDS does for temporary credentials;
// IAMToken must never sign with anything else.
type sessionKeys struct{ sts *sts.STS }

func (k sessionKeys) Resolve(accessKeyID, sessionToken string) (rdsiam.Key, error) {
	if sessionToken == "" {
		return rdsiam.Key{}, errors.New("signed with a long-term key, not the role's session")
	}
	secret, caller, err := k.sts.Resolve(accessKeyID, sessionToken)
	return rdsiam.Key{Secret: secret, Caller: caller}, err
}

// podRole is what a pod of ServiceAccount default/rds-db-access has: a role it may assume with
// its projected token, which the issuer signed, in the file the webhook points
// AWS_WEB_IDENTITY_TOKEN_FILE at, and the local VPC's STS endpoint. The role's policy is
// policy.
func podRole(t *testing.T, vpc *vpctest.Env, name, policy string) {
	t.Helper()
	iss := oidctest.Start(t)
	c := vpc.IAM()
	prov, err := c.CreateOpenIDConnectProvider(t.Context(), &iam.CreateOpenIDConnectProviderInput{Url: aws.String(iss.URL), ClientIDList: []string{"sts.amazonaws.com"}})
	if err != nil {
		t.Fatalf("CreateOpenIDConnectProvider: %v", err)
	}
	host, sa := strings.TrimPrefix(iss.URL, "http://"), "system:serviceaccount:default:rds-db-access"
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + aws.ToString(prov.OpenIDConnectProviderArn) +
		`"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + host + `:sub":"` + sa + `","` + host + `:aud":"sts.amazonaws.com"}}}]}`
	if _, err := c.CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatalf("CreateRole: %v", err)
	}
	if _, err := c.PutRolePolicy(t.Context(), &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("db"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatalf("PutRolePolicy: %v", err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(iss.Sign(t, iss.Claims(sa, "sts.amazonaws.com", vpc.Clock.Now(), time.Hour))), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only what the pod identity webhook gives: nothing of the machine's own AWS setup.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_ROLE_ARN", "arn:aws:iam::"+state.AccountID+":role/"+name)
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile)
	t.Setenv("AWS_REGION", vpctest.Region)
	t.Setenv("AWS_ENDPOINT_URL_STS", vpc.URL)
}

// TestIAMToken makes tokens as postgres_test_iam.py does, through the SDK's default credential
// chain from a pod's web identity token and the local VPC's STS, and checks them as the local
// VPC's RDS does: the role allowed rds-db:connect as alice connects, a role without it not.
func TestIAMToken(t *testing.T) {
	const dbi = "db-PGCHECKTEST"
	resource := rdsiam.ResourceARN(vpctest.Region, state.AccountID, dbi, "alice")
	target := rdsiam.Target{Host: "iam-db.abc.us-west-2.rds.amazonaws.com", Port: 5432, ResourceID: dbi, User: "alice"}
	for name, tc := range map[string]struct {
		policy string
		want   string // "" for accepted, else part of the checker's reason
	}{
		"may connect":     {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"` + resource + `"}]}`, ""},
		"may not connect": {`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`, "rds-db:connect"},
	} {
		t.Run(name, func(t *testing.T) {
			vpc := vpctest.Start(t, vpctest.Options{})
			podRole(t, vpc, "rds-db-access", tc.policy)
			token, err := pgcheck.IAMToken(t.Context(), pgcheck.Config{Host: target.Host, Port: target.Port, User: "alice", Auth: pgcheck.AuthIAM})
			if err != nil {
				t.Fatalf("IAMToken: %v", err)
			}
			checker := &rdsiam.Checker{Keys: sessionKeys{vpc.STS}, Authorizer: vpc.STS, Region: vpctest.Region, Account: state.AccountID, Now: vpc.Clock.Now}
			err = checker.Check(token, target)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("checking %s: %v; want %q", token, err, tc.want)
			}
		})
	}
}

// TestIAMTokenWithoutCredentials: with no credentials anywhere the script fails before it
// connects (boto3 raises NoCredentialsError); Run says so instead of printing a result.
func TestIAMTokenWithoutCredentials(t *testing.T) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_PROFILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	var out strings.Builder
	err := pgcheck.Run(t.Context(), pgcheck.Config{Host: "127.0.0.1", Port: 1, User: "alice", Auth: pgcheck.AuthIAM}, &out)
	if err == nil || !strings.Contains(err.Error(), "building the RDS auth token for 127.0.0.1:1 as alice") || out.Len() != 0 {
		t.Fatalf("Run = %v, output %q; want the token error and no output", err, out.String())
	}
}

func TestParseAuth(t *testing.T) {
	for in, want := range map[string]pgcheck.Auth{"password": pgcheck.AuthPassword, "iam": pgcheck.AuthIAM, "IAM": "", "": ""} {
		got, err := pgcheck.ParseAuth(in)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("ParseAuth(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
