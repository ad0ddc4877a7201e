package iamapi_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"

	"github.com/podsg/podsg/internal/vpc/vpctest"
)

const (
	trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/issuer.example/cluster"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"issuer.example/cluster:sub":"system:serviceaccount:default:rds-db-access"}}}]}`
	connect = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"arn:aws:rds-db:us-west-2:111122223333:dbuser:*/app"}]}`
)

func decode(t *testing.T, doc *string) string {
	t.Helper()
	s, err := url.QueryUnescape(aws.ToString(doc))
	if err != nil {
		t.Fatalf("document %q is not URL-encoded: %v", aws.ToString(doc), err)
	}
	return s
}

// TestOIDCProviders: create, get, list, a duplicate, a bad URL, delete.
func TestOIDCProviders(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.IAM(), context.Background()
	out, err := c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://issuer.example/cluster"), ClientIDList: []string{"sts.amazonaws.com"},
		ThumbprintList: []string{"9E99A48A9960B14926BB7F3B02E22DA2B0AB7280"},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.OpenIDConnectProviderArn)
	if arn != "arn:aws:iam::111122223333:oidc-provider/issuer.example/cluster" {
		t.Fatalf("ARN = %s", arn)
	}
	got, err := c.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(got.Url) != "issuer.example/cluster" || len(got.ClientIDList) != 1 || got.ThumbprintList[0] != "9e99a48a9960b14926bb7f3b02e22da2b0ab7280" {
		t.Fatalf("GetOpenIDConnectProvider = %+v", got)
	}
	_, err = c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://issuer.example/cluster/"), ClientIDList: []string{"x"}})
	vpctest.ExpectCode(t, err, "EntityAlreadyExists")
	_, err = c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("ftp://issuer.example"), ClientIDList: []string{"x"}})
	vpctest.ExpectCode(t, err, "InvalidInput")
	_, err = c.CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{Url: aws.String("https://other.example"), ThumbprintList: []string{"abc"}})
	vpctest.ExpectCode(t, err, "ValidationError")
	list, err := c.ListOpenIDConnectProviders(ctx, &iam.ListOpenIDConnectProvidersInput{})
	if err != nil || len(list.OpenIDConnectProviderList) != 1 {
		t.Fatalf("ListOpenIDConnectProviders = %+v, %v", list, err)
	}
	if _, err := c.DeleteOpenIDConnectProvider(ctx, &iam.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetOpenIDConnectProvider(ctx, &iam.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: &arn})
	vpctest.ExpectCode(t, err, "NoSuchEntity")
}

// TestRoles: a role with a trust policy and inline policies; the errors
// IAM gives for bad names, bad documents, duplicates and deletes out of order.
func TestRoles(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.IAM(), context.Background()
	out, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("rds-db-access"), AssumeRolePolicyDocument: aws.String(trust),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("db")}}})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Role
	if aws.ToString(r.Arn) != "arn:aws:iam::111122223333:role/rds-db-access" || len(aws.ToString(r.RoleId)) != 21 || aws.ToString(r.Path) != "/" {
		t.Fatalf("role = %+v", r)
	}
	if decode(t, r.AssumeRolePolicyDocument) != trust {
		t.Fatalf("trust policy = %s", decode(t, r.AssumeRolePolicyDocument))
	}
	for _, bad := range []struct {
		name string
		in   iam.CreateRoleInput
		code string
	}{
		{"duplicate, other case", iam.CreateRoleInput{RoleName: aws.String("RDS-DB-ACCESS"), AssumeRolePolicyDocument: aws.String(trust)}, "EntityAlreadyExists"},
		{"bad name", iam.CreateRoleInput{RoleName: aws.String("a/b"), AssumeRolePolicyDocument: aws.String(trust)}, "ValidationError"},
		{"not JSON", iam.CreateRoleInput{RoleName: aws.String("x"), AssumeRolePolicyDocument: aws.String("{")}, "MalformedPolicyDocument"},
		{"identity policy as trust", iam.CreateRoleInput{RoleName: aws.String("x"), AssumeRolePolicyDocument: aws.String(connect)}, "MalformedPolicyDocument"},
		{"bad path", iam.CreateRoleInput{RoleName: aws.String("x"), Path: aws.String("nope"), AssumeRolePolicyDocument: aws.String(trust)}, "ValidationError"},
		{"session too long", iam.CreateRoleInput{RoleName: aws.String("x"), MaxSessionDuration: aws.Int32(50000), AssumeRolePolicyDocument: aws.String(trust)}, "ValidationError"},
	} {
		_, err := c.CreateRole(ctx, &bad.in)
		if vpctest.Code(err) != bad.code {
			t.Errorf("%s: error %v, want %s", bad.name, err, bad.code)
		}
	}

	role := aws.String("rds-db-access")
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("connect"), PolicyDocument: aws.String(connect)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: role, PolicyName: aws.String("bad"), PolicyDocument: aws.String(trust)})
	vpctest.ExpectCode(t, err, "MalformedPolicyDocument") // names a principal
	pol, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: role, PolicyName: aws.String("connect")})
	if err != nil || decode(t, pol.PolicyDocument) != connect {
		t.Fatalf("GetRolePolicy = %+v, %v", pol, err)
	}
	names, err := c.ListRolePolicies(ctx, &iam.ListRolePoliciesInput{RoleName: role})
	if err != nil || len(names.PolicyNames) != 1 || names.PolicyNames[0] != "connect" {
		t.Fatalf("ListRolePolicies = %+v, %v", names, err)
	}
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: role})
	vpctest.ExpectCode(t, err, "DeleteConflict")
	if _, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: role, PolicyName: aws.String("connect")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: role, PolicyName: aws.String("connect")})
	vpctest.ExpectCode(t, err, "NoSuchEntity")

	other := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if _, err := c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: role, PolicyDocument: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("RDS-DB-Access")})
	if err != nil || decode(t, got.Role.AssumeRolePolicyDocument) != other || len(got.Role.Tags) != 1 {
		t.Fatalf("GetRole after UpdateAssumeRolePolicy = %+v, %v", got, err)
	}
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("b-role"), Path: aws.String("/svc/"), AssumeRolePolicyDocument: aws.String(other)}); err != nil {
		t.Fatal(err)
	}
	first, err := c.ListRoles(ctx, &iam.ListRolesInput{MaxItems: aws.Int32(1)})
	if err != nil || len(first.Roles) != 1 || !first.IsTruncated || aws.ToString(first.Roles[0].RoleName) != "b-role" {
		t.Fatalf("ListRoles page 1 = %+v, %v", first, err)
	}
	second, err := c.ListRoles(ctx, &iam.ListRolesInput{MaxItems: aws.Int32(1), Marker: first.Marker})
	if err != nil || len(second.Roles) != 1 || second.IsTruncated || aws.ToString(second.Roles[0].RoleName) != "rds-db-access" {
		t.Fatalf("ListRoles page 2 = %+v, %v", second, err)
	}
	svc, err := c.ListRoles(ctx, &iam.ListRolesInput{PathPrefix: aws.String("/svc/")})
	if err != nil || len(svc.Roles) != 1 {
		t.Fatalf("ListRoles /svc/ = %+v, %v", svc, err)
	}
	if _, err := c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: role}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetRole(ctx, &iam.GetRoleInput{RoleName: role})
	vpctest.ExpectCode(t, err, "NoSuchEntity")
}

// TestManagedPolicies: create, read its version, attach, delete conflicts, detach, delete.
func TestManagedPolicies(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.IAM(), context.Background()
	if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("db-connect"), PolicyDocument: aws.String(connect), Description: aws.String("connect as app")})
	if err != nil {
		t.Fatal(err)
	}
	arn := out.Policy.Arn
	if aws.ToString(arn) != "arn:aws:iam::111122223333:policy/db-connect" || aws.ToString(out.Policy.DefaultVersionId) != "v1" {
		t.Fatalf("policy = %+v", out.Policy)
	}
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("db-connect"), PolicyDocument: aws.String(connect)})
	vpctest.ExpectCode(t, err, "EntityAlreadyExists")
	_, err = c.CreatePolicy(ctx, &iam.CreatePolicyInput{PolicyName: aws.String("bad"), PolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"rds-db:connect"}}`)})
	vpctest.ExpectCode(t, err, "MalformedPolicyDocument") // no Resource
	v, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v1")})
	if err != nil || decode(t, v.PolicyVersion.Document) != connect || !v.PolicyVersion.IsDefaultVersion {
		t.Fatalf("GetPolicyVersion = %+v, %v", v, err)
	}
	_, err = c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: arn, VersionId: aws.String("v2")})
	vpctest.ExpectCode(t, err, "NoSuchEntity")

	if _, err := c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: aws.String("arn:aws:iam::111122223333:policy/none")})
	vpctest.ExpectCode(t, err, "NoSuchEntity")
	att, err := c.ListAttachedRolePolicies(ctx, &iam.ListAttachedRolePoliciesInput{RoleName: aws.String("app")})
	if err != nil || len(att.AttachedPolicies) != 1 || aws.ToString(att.AttachedPolicies[0].PolicyName) != "db-connect" {
		t.Fatalf("ListAttachedRolePolicies = %+v, %v", att, err)
	}
	got, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: arn})
	if err != nil || aws.ToInt32(got.Policy.AttachmentCount) != 1 {
		t.Fatalf("GetPolicy = %+v, %v", got, err)
	}
	_, err = c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: arn})
	vpctest.ExpectCode(t, err, "DeleteConflict")
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("app")})
	vpctest.ExpectCode(t, err, "DeleteConflict")
	if _, err := c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.DetachRolePolicy(ctx, &iam.DetachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: arn})
	vpctest.ExpectCode(t, err, "NoSuchEntity")
	list, err := c.ListPolicies(ctx, &iam.ListPoliciesInput{Scope: types.PolicyScopeTypeLocal})
	if err != nil || len(list.Policies) != 1 {
		t.Fatalf("ListPolicies = %+v, %v", list, err)
	}
	if _, err := c.DeletePolicy(ctx, &iam.DeletePolicyInput{PolicyArn: arn}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: arn})
	vpctest.ExpectCode(t, err, "NoSuchEntity")
}

// TestInstanceProfiles: one role per profile; deletes in dependency order.
func TestInstanceProfiles(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	c, ctx := env.IAM(), context.Background()
	ec2Trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	for _, n := range []string{"node", "other"} {
		if _, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(n), AssumeRolePolicyDocument: aws.String(ec2Trust)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("node")})
	if err != nil || aws.ToString(out.InstanceProfile.Arn) != "arn:aws:iam::111122223333:instance-profile/node" {
		t.Fatalf("CreateInstanceProfile = %+v, %v", out, err)
	}
	_, err = c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("node")})
	vpctest.ExpectCode(t, err, "EntityAlreadyExists")
	p := aws.String("node")
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: p, RoleName: aws.String("node")}); err != nil {
		t.Fatal(err)
	}
	_, err = c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: p, RoleName: aws.String("other")})
	vpctest.ExpectCode(t, err, "LimitExceeded")
	got, err := c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: p})
	if err != nil || len(got.InstanceProfile.Roles) != 1 || aws.ToString(got.InstanceProfile.Roles[0].RoleName) != "node" {
		t.Fatalf("GetInstanceProfile = %+v, %v", got, err)
	}
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: aws.String("node")})
	vpctest.ExpectCode(t, err, "DeleteConflict")
	_, err = c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: p})
	vpctest.ExpectCode(t, err, "DeleteConflict")
	if _, err := c.RemoveRoleFromInstanceProfile(ctx, &iam.RemoveRoleFromInstanceProfileInput{InstanceProfileName: p, RoleName: aws.String("node")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteInstanceProfile(ctx, &iam.DeleteInstanceProfileInput{InstanceProfileName: p}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetInstanceProfile(ctx, &iam.GetInstanceProfileInput{InstanceProfileName: p})
	vpctest.ExpectCode(t, err, "NoSuchEntity")
}
