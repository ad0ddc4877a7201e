package sts_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/oidc/oidctest"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

const (
	sub      = "system:serviceaccount:default:rds-db-access"
	dbuser   = "arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABCDEFGHIJKL01234/app"
	roleARN  = "arn:aws:iam::111122223333:role/rds-db-access"
	rootKey  = "AKIDROOT"
	rootSecr = "root-secret"
)

// irsa is a VPC whose IAM trusts a test issuer: an OIDC provider for it and
// the role rds-db-access for one service account, allowed rds-db:connect.
type irsa struct {
	env *vpctest.Env
	iss *oidctest.Issuer
}

func setup(t *testing.T) *irsa {
	t.Helper()
	env := vpctest.Start(t, vpctest.Options{Credentials: server.Credentials{rootKey: rootSecr}, AccessKey: rootKey, SecretKey: rootSecr})
	iss := oidctest.Start(t)
	c, ctx := iamClient(env), context.Background()
	if _, err := c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String(iss.URL), ClientIDList: []string{"sts.amazonaws.com"}}); err != nil {
		t.Fatal(err)
	}
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/` + iss.Host + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + iss.Host + `:sub":"` + sub + `","` + iss.Host + `:aud":"sts.amazonaws.com"}}}]}`
	mustRole(t, c, "rds-db-access", trust)
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("rds-db-access"), PolicyName: aws.String("connect"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"` + dbuser + `"}]}`)}); err != nil {
		t.Fatal(err)
	}
	return &irsa{env: env, iss: iss}
}

func iamClient(env *vpctest.Env) *iam.Client {
	return iam.New(iam.Options{Region: vpctest.Region, Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: rootKey, SecretAccessKey: rootSecr}, nil
	}), BaseEndpoint: aws.String(env.URL), Retryer: aws.NopRetryer{}})
}

func mustRole(t *testing.T, c *iam.Client, name, trust string) {
	t.Helper()
	if _, err := c.CreateRole(context.Background(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
}

// anonymous is an STS client with no credentials, as the SDKs call
// AssumeRoleWithWebIdentity: unsigned.
func (s *irsa) anonymous() *awssts.Client {
	return awssts.New(awssts.Options{Region: vpctest.Region, Credentials: aws.AnonymousCredentials{},
		BaseEndpoint: aws.String(s.env.URL), Retryer: aws.NopRetryer{}})
}

func (s *irsa) token(t *testing.T, mutate func(map[string]any)) string {
	c := s.iss.Claims(sub, "sts.amazonaws.com", time.Now(), time.Hour)
	if mutate != nil {
		mutate(c)
	}
	return s.iss.Sign(t, c)
}

func (s *irsa) assume(tok string) (*awssts.AssumeRoleWithWebIdentityOutput, error) {
	return s.anonymous().AssumeRoleWithWebIdentity(context.Background(), &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleARN), RoleSessionName: aws.String("pod-1"), WebIdentityToken: aws.String(tok)})
}

// TestAssumeRoleWithWebIdentity: a token of the trusted service account
// becomes credentials of the role, which sign requests to every service of
// the endpoint, say who they are, and carry the role's permissions.
func TestAssumeRoleWithWebIdentity(t *testing.T) {
	s := setup(t)
	out, err := s.assume(s.token(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || len(aws.ToString(c.AccessKeyId)) != 20 || aws.ToString(c.SessionToken) == "" ||
		!c.Expiration.After(s.env.Clock.Now().Add(59*time.Minute)) {
		t.Fatalf("credentials = %+v", c)
	}
	if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::111122223333:assumed-role/rds-db-access/pod-1" {
		t.Fatalf("AssumedRoleUser = %s", got)
	}
	if aws.ToString(out.SubjectFromWebIdentityToken) != sub || aws.ToString(out.Audience) != "sts.amazonaws.com" {
		t.Fatalf("subject %s audience %s", aws.ToString(out.SubjectFromWebIdentityToken), aws.ToString(out.Audience))
	}
	ak, sk, tok := aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)
	id, err := s.env.STSClient(ak, sk, tok).GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != "arn:aws:sts::111122223333:assumed-role/rds-db-access/pod-1" || aws.ToString(id.Account) != "111122223333" ||
		!strings.HasSuffix(aws.ToString(id.UserId), ":pod-1") {
		t.Fatalf("GetCallerIdentity = %+v", id)
	}
	// The same credentials sign EC2 calls.
	if _, err := vpctest.NewClientWithToken(s.env.URL, ak, sk, tok).DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatalf("DescribeVpcs with temporary credentials: %v", err)
	}
	// What the role may do, as RDS will ask it.
	_, caller, err := s.env.STS.Resolve(ak, tok)
	if err != nil {
		t.Fatal(err)
	}
	for res, want := range map[string]iampolicy.Decision{dbuser: iampolicy.Allowed, strings.Replace(dbuser, "/app", "/admin", 1): iampolicy.ImplicitDeny} {
		if d, err := s.env.STS.Authorize(caller, "rds-db:connect", res, nil); err != nil || d != want {
			t.Errorf("Authorize rds-db:connect %s = %v, %v; want %v", res, d, err, want)
		}
	}
}

// TestAssumeRoleWithWebIdentityRejects: each bad token or request gets the
// error STS gives.
func TestAssumeRoleWithWebIdentityRejects(t *testing.T) {
	s := setup(t)
	other := oidctest.Start(t) // a real issuer, but not registered
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, token, code string
	}{
		{"expired", s.token(t, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }), "ExpiredTokenException"},
		{"wrong audience", s.token(t, func(c map[string]any) { c["aud"] = "someone-else" }), "InvalidIdentityToken"},
		{"issuer not registered", other.Sign(t, other.Claims(sub, "sts.amazonaws.com", time.Now(), time.Hour)), "InvalidIdentityToken"},
		{"bad signature", oidctest.SignWith(t, otherKey, s.iss.Kid, s.iss.Claims(sub, "sts.amazonaws.com", time.Now(), time.Hour)), "InvalidIdentityToken"},
		{"trust policy names another service account", s.token(t, func(c map[string]any) { c["sub"] = "system:serviceaccount:default:other" }), "AccessDenied"},
		{"not a JWT", "not-a-token", "InvalidIdentityToken"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.assume(c.token)
			vpctest.ExpectCode(t, err, c.code)
		})
	}
	t.Run("only AssumeRoleWithWebIdentity goes unsigned", func(t *testing.T) {
		_, err := s.anonymous().GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
		vpctest.ExpectCode(t, err, "AuthFailure")
	})
	t.Run("no such role", func(t *testing.T) {
		_, err := s.anonymous().AssumeRoleWithWebIdentity(context.Background(), &awssts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String("arn:aws:iam::111122223333:role/none"), RoleSessionName: aws.String("pod-1"), WebIdentityToken: aws.String(s.token(t, nil))})
		vpctest.ExpectCode(t, err, "AccessDenied")
	})
	t.Run("longer than the role allows", func(t *testing.T) {
		_, err := s.anonymous().AssumeRoleWithWebIdentity(context.Background(), &awssts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String("pod-1"), WebIdentityToken: aws.String(s.token(t, nil)), DurationSeconds: aws.Int32(7200)})
		vpctest.ExpectCode(t, err, "ValidationError")
	})
	t.Run("issuer unreachable", func(t *testing.T) {
		gone := oidctest.Start(t)
		if _, err := iamClient(s.env).CreateOpenIDConnectProvider(context.Background(), &iam.CreateOpenIDConnectProviderInput{
			Url: aws.String(gone.URL), ClientIDList: []string{"sts.amazonaws.com"}}); err != nil {
			t.Fatal(err)
		}
		tok := gone.Sign(t, gone.Claims(sub, "sts.amazonaws.com", time.Now(), time.Hour))
		gone.Close()
		_, err := s.assume(tok)
		vpctest.ExpectCode(t, err, "IDPCommunicationError")
	})
}

// TestTemporaryCredentialsOnSignedRequests: a session token the server did
// not issue, a wrong secret and an expired session are refused.
func TestTemporaryCredentialsOnSignedRequests(t *testing.T) {
	s := setup(t)
	out, err := s.assume(s.token(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	ak, sk, tok := aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)
	call := func(ak, sk, tok string) error {
		_, err := vpctest.NewClientWithToken(s.env.URL, ak, sk, tok).DescribeVpcs(context.Background(), &ec2.DescribeVpcsInput{})
		return err
	}
	vpctest.ExpectCode(t, call(ak, sk, tok[:len(tok)-2]+"xx"), "InvalidClientTokenId")
	vpctest.ExpectCode(t, call("ASIAOTHERKEY00000000", sk, tok), "InvalidClientTokenId")
	vpctest.ExpectCode(t, call(ak, "wrong-secret", tok), "SignatureDoesNotMatch")
	s.env.Clock.Step(time.Hour + time.Second)
	vpctest.ExpectCode(t, call(ak, sk, tok), "ExpiredToken")
}

// TestAssumeRole: the root keys assume a role that trusts the account; a
// role session assumes a role that trusts its role; a role that trusts only
// the account also needs the caller's own policy to allow sts:AssumeRole.
func TestAssumeRole(t *testing.T) {
	s := setup(t)
	ctx, c := context.Background(), iamClient(s.env)
	mustRole(t, c, "ci", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"`+roleARN+`"},"Action":"sts:AssumeRole"}}`)
	mustRole(t, c, "admin", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}}`)

	root := s.env.STSClient(rootKey, rootSecr, "")
	id, err := root.GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:iam::111122223333:root" {
		t.Fatalf("root GetCallerIdentity = %+v, %v", id, err)
	}
	if _, err := root.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/admin"), RoleSessionName: aws.String("ops")}); err != nil {
		t.Fatalf("root assumes admin: %v", err)
	}
	_, err = root.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/ci"), RoleSessionName: aws.String("ops")})
	vpctest.ExpectCode(t, err, "AccessDenied") // ci trusts only rds-db-access

	out, err := s.assume(s.token(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	sess := s.env.STSClient(aws.ToString(out.Credentials.AccessKeyId), aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken))
	ci, err := sess.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/ci"), RoleSessionName: aws.String("build")})
	if err != nil {
		t.Fatalf("rds-db-access assumes ci: %v", err)
	}
	if aws.ToString(ci.AssumedRoleUser.Arn) != "arn:aws:sts::111122223333:assumed-role/ci/build" {
		t.Fatalf("AssumedRoleUser = %s", aws.ToString(ci.AssumedRoleUser.Arn))
	}
	_, err = sess.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/admin"), RoleSessionName: aws.String("xx")})
	vpctest.ExpectCode(t, err, "AccessDenied") // the account is trusted, but rds-db-access's policy does not allow sts:AssumeRole
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String("rds-db-access"), PolicyName: aws.String("assume"),
		PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::111122223333:role/admin"}}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/admin"), RoleSessionName: aws.String("xx")}); err != nil {
		t.Fatalf("after allowing sts:AssumeRole: %v", err)
	}
	_, err = sess.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::111122223333:role/admin"), RoleSessionName: aws.String("xx"), DurationSeconds: aws.Int32(7200)})
	vpctest.ExpectCode(t, err, "ValidationError") // role chaining: one hour at most
}

// TestInstanceCredentials: the credentials instance metadata hands out are
// a session of the profile's role named after the instance, accepted on
// signed requests; a profile without a role has none.
func TestInstanceCredentials(t *testing.T) {
	s := setup(t)
	ctx, c := context.Background(), iamClient(s.env)
	mustRole(t, c, "node", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}`)
	if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("node")}); err != nil {
		t.Fatal(err)
	}
	const profile = "arn:aws:iam::111122223333:instance-profile/node"
	if _, _, ok := s.env.STS.InstanceCredentials(profile, "i-0123456789abcdef0", time.Hour); ok {
		t.Fatal("credentials for a profile without a role")
	}
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("node"), RoleName: aws.String("node")}); err != nil {
		t.Fatal(err)
	}
	cr, role, ok := s.env.STS.InstanceCredentials(profile, "i-0123456789abcdef0", time.Hour)
	if !ok || role != "node" {
		t.Fatalf("InstanceCredentials = %v, %q", ok, role)
	}
	id, err := s.env.STSClient(cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	if err != nil || aws.ToString(id.Arn) != "arn:aws:sts::111122223333:assumed-role/node/i-0123456789abcdef0" {
		t.Fatalf("GetCallerIdentity = %+v, %v", id, err)
	}
}
