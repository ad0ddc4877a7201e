package iampolicy

import (
	"testing"
)

// The cases below are AWS's documented examples (IAM User Guide: policy
// evaluation logic, the Action/NotAction, Resource/NotResource, Condition,
// condition operators, policy variables and example policies pages, and
// the EKS and RDS guides for IRSA and rds-db:connect), each with requests
// that the documentation says are allowed or denied.

const acct = "111122223333"

type evalCase struct {
	name     string
	kind     Kind
	policies []string
	req      Request
	ctx      map[string][]string
	want     Decision
}

func id(action, resource string) Request { return Request{Action: action, Resource: resource} }

var (
	// Explicit Deny overrides any Allow: an administrator policy plus a
	// deny of the production bucket.
	adminAll  = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`
	denyProdB = `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"s3:*","Resource":["arn:aws:s3:::prod","arn:aws:s3:::prod/*"]}}`
	// NotAction with Allow: everything but IAM.
	allButIAM = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}}`
	// NotAction with Deny and BoolIfExists: deny all but IAM self-service without MFA.
	denyNoMFA = `{"Version":"2012-10-17","Statement":[
	  {"Sid":"DenyAllExceptListedIfNoMFA","Effect":"Deny",
	   "NotAction":["iam:CreateVirtualMFADevice","iam:EnableMFADevice","iam:GetUser","iam:ListMFADevices","iam:ListVirtualMFADevices","iam:ResyncMFADevice","sts:GetSessionToken"],
	   "Resource":"*","Condition":{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}}]}`
	// NotResource: allow everything except one bucket.
	allButBucket = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","NotResource":["arn:aws:s3:::HRBucket/Payroll","arn:aws:s3:::HRBucket/Payroll/*"]}}`
	// Policy variable in Resource: each user their home prefix.
	homeDir = `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket",
	   "Condition":{"StringLike":{"s3:prefix":["","home/","home/${aws:username}/*"]}}},
	  {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"}]}`
	// The same policy without Version: variables are literal text.
	homeDir2008 = `{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/*"}}`
	// A principal tag decides.
	tagJob = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:*AccessKey*","Resource":"arn:aws:iam::111122223333:user/*",
	  "Condition":{"StringEquals":{"aws:PrincipalTag/job-category":"iamuser-admin"}}}}`
	// Multiple values are OR, multiple keys AND.
	orAnd = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:StartInstances","Resource":"*",
	  "Condition":{"StringEquals":{"aws:PrincipalTag/team":["a","b"],"aws:RequestedRegion":"us-west-2"}}}}`
	// A negated operator with several values: the value must be none of them.
	notEq = `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*",
	  "Condition":{"StringNotEquals":{"aws:RequestedRegion":["us-west-2","eu-west-1"]}}}}`
	// Time window.
	window = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*",
	  "Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2020-06-30T23:59:59Z"}}}}`
	// Source IP allow and deny.
	ipDeny = `{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*",
	  "Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]},"Bool":{"aws:ViaAWSService":"false"}}}}`
	// Tag keys: ForAllValues holds over an empty set, ForAnyValue does not.
	tagKeysAll = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",
	  "Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}}}`
	tagKeysAny = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"*",
	  "Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}}}`
	// Null: only temporary credentials (aws:TokenIssueTime present).
	tempOnly = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:*","Resource":"*","Condition":{"Null":{"aws:TokenIssueTime":"false"}}}}`
	// Numeric.
	maxKeys = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::amzn-s3-demo-bucket",
	  "Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"}}}}`
	// ARN operators.
	arnLike = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sns:Publish","Resource":"*",
	  "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:s3:*:*:amzn-s3-demo-*"}}}}`
	// RDS IAM database authentication (RDS User Guide).
	rdsConnect = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["rds-db:connect"],
	  "Resource":["arn:aws:rds-db:us-east-2:111122223333:dbuser:db-ABCDEFGHIJKL01234/db_user"]}]}`
	rdsAnyUser = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"rds-db:connect","Resource":"arn:aws:rds-db:us-east-2:111122223333:dbuser:*/*"}}`
	// IfExists: the type restriction applies only to requests that carry the key.
	ifExists = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:RunInstances","Resource":"*",
	  "Condition":{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}}}`
	// IRSA trust policy (EKS User Guide).
	irsaTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
	  "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"},
	  "Action":"sts:AssumeRoleWithWebIdentity",
	  "Condition":{"StringEquals":{"oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub":"system:serviceaccount:default:my-service-account",
	                               "oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:aud":"sts.amazonaws.com"}}}]}`
	irsaTrustLike = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
	  "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.example"},
	  "Action":"sts:AssumeRoleWithWebIdentity",
	  "Condition":{"StringLike":{"oidc.example:sub":"system:serviceaccount:team-a:*"}}}]}`
	// EC2 service trust policy of an instance profile's role.
	ec2Trust = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}`
	// Account and role principals.
	acctTrust = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}}`
	roleTrust = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:role/ci"]},"Action":["sts:AssumeRole","sts:TagSession"]}}`
	// NotPrincipal with Deny: everyone but the named role is denied.
	notPrincipal = `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"},
	  {"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:role/ci"},"Action":"sts:AssumeRole"}]}`
	// Variables with a default and in a condition value.
	varDefault = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:PrincipalTag/team, 'shared'}/*"}}`
	varEscape  = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${*}"}}`
	varCond    = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:StopInstances","Resource":"*",
	  "Condition":{"StringEquals":{"aws:ResourceTag/owner":"${aws:username}"}}}}`
)

var (
	webIdentity = Principal{Type: "Federated", IDs: []string{"arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"}}
	ciSession   = Principal{Type: "AWS", Account: acct, IDs: []string{"arn:aws:sts::111122223333:assumed-role/ci/build-7", "arn:aws:iam::111122223333:role/ci"}}
	devSession  = Principal{Type: "AWS", Account: acct, IDs: []string{"arn:aws:sts::111122223333:assumed-role/dev/alice", "arn:aws:iam::111122223333:role/dev"}}
	otherAcct   = Principal{Type: "AWS", Account: "444455556666", IDs: []string{"arn:aws:iam::444455556666:role/ci"}}
)

func withPrincipal(p Principal, action, resource string) Request {
	return Request{Principal: p, Action: action, Resource: resource}
}

const irsaSub = "oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:sub"
const irsaAud = "oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE:aud"

var evalCases = []evalCase{
	// Evaluation logic: default deny, Allow needed, explicit Deny wins.
	{name: "no policy: implicit deny", req: id("s3:GetObject", "arn:aws:s3:::b/k"), want: ImplicitDeny},
	{name: "admin allows", policies: []string{adminAll}, req: id("s3:GetObject", "arn:aws:s3:::prod/k"), want: Allowed},
	{name: "deny wins over admin", policies: []string{adminAll, denyProdB}, req: id("s3:GetObject", "arn:aws:s3:::prod/k"), want: ExplicitDeny},
	{name: "deny of another bucket leaves the allow", policies: []string{adminAll, denyProdB}, req: id("s3:GetObject", "arn:aws:s3:::dev/k"), want: Allowed},
	{name: "deny alone is still a deny", policies: []string{denyProdB}, req: id("s3:ListBucket", "arn:aws:s3:::prod"), want: ExplicitDeny},

	// Action and NotAction; actions are case-insensitive.
	{name: "NotAction allows other services", policies: []string{allButIAM}, req: id("ec2:RunInstances", "*"), want: Allowed},
	{name: "NotAction leaves IAM denied", policies: []string{allButIAM}, req: id("iam:CreateUser", "arn:aws:iam::111122223333:user/bob"), want: ImplicitDeny},
	{name: "action case-insensitive", policies: []string{tagJob}, req: id("IAM:createaccesskey", "arn:aws:iam::111122223333:user/bob"),
		ctx: map[string][]string{"aws:PrincipalTag/job-category": {"iamuser-admin"}}, want: Allowed},
	{name: "action wildcard in the middle", policies: []string{tagJob}, req: id("iam:UpdateAccessKey", "arn:aws:iam::111122223333:user/bob"),
		ctx: map[string][]string{"aws:PrincipalTag/job-category": {"iamuser-admin"}}, want: Allowed},
	{name: "action wildcard does not match another action", policies: []string{tagJob}, req: id("iam:CreateUser", "arn:aws:iam::111122223333:user/bob"),
		ctx: map[string][]string{"aws:PrincipalTag/job-category": {"iamuser-admin"}}, want: ImplicitDeny},
	{name: "deny NotAction without MFA denies EC2", policies: []string{adminAll, denyNoMFA}, req: id("ec2:StopInstances", "*"),
		ctx: map[string][]string{"aws:MultiFactorAuthPresent": {"false"}}, want: ExplicitDeny},
	{name: "deny NotAction without the MFA key (long-term keys) denies", policies: []string{adminAll, denyNoMFA}, req: id("ec2:StopInstances", "*"), want: ExplicitDeny},
	{name: "deny NotAction with MFA allows", policies: []string{adminAll, denyNoMFA}, req: id("ec2:StopInstances", "*"),
		ctx: map[string][]string{"aws:MultiFactorAuthPresent": {"true"}}, want: Allowed},
	{name: "deny NotAction leaves the listed actions", policies: []string{adminAll, denyNoMFA}, req: id("iam:ListMFADevices", "*"),
		ctx: map[string][]string{"aws:MultiFactorAuthPresent": {"false"}}, want: Allowed},

	// Resource and NotResource; resources are case-sensitive.
	{name: "NotResource allows another bucket", policies: []string{allButBucket}, req: id("s3:GetObject", "arn:aws:s3:::HRBucket/Other/x"), want: Allowed},
	{name: "NotResource excludes the named object", policies: []string{allButBucket}, req: id("s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x"), want: ImplicitDeny},
	{name: "resource case-sensitive", policies: []string{denyProdB, adminAll}, req: id("s3:GetObject", "arn:aws:s3:::PROD/k"), want: Allowed},
	{name: "rds-db:connect exact user", policies: []string{rdsConnect}, req: id("rds-db:connect", "arn:aws:rds-db:us-east-2:111122223333:dbuser:db-ABCDEFGHIJKL01234/db_user"), want: Allowed},
	{name: "rds-db:connect another user", policies: []string{rdsConnect}, req: id("rds-db:connect", "arn:aws:rds-db:us-east-2:111122223333:dbuser:db-ABCDEFGHIJKL01234/admin"), want: ImplicitDeny},
	{name: "rds-db:connect another instance", policies: []string{rdsConnect}, req: id("rds-db:connect", "arn:aws:rds-db:us-east-2:111122223333:dbuser:db-OTHER/db_user"), want: ImplicitDeny},
	{name: "rds-db:connect another region", policies: []string{rdsConnect}, req: id("rds-db:connect", "arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABCDEFGHIJKL01234/db_user"), want: ImplicitDeny},
	{name: "rds-db:connect wildcards per segment", policies: []string{rdsAnyUser}, req: id("rds-db:connect", "arn:aws:rds-db:us-east-2:111122223333:dbuser:db-X/anyone"), want: Allowed},
	{name: "rds-db:connect is not rds:Connect", policies: []string{rdsConnect}, req: id("rds:connect", "arn:aws:rds-db:us-east-2:111122223333:dbuser:db-ABCDEFGHIJKL01234/db_user"), want: ImplicitDeny},

	// Policy variables.
	{name: "home directory of the user", policies: []string{homeDir}, req: id("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/notes.txt"),
		ctx: map[string][]string{"aws:username": {"alice"}}, want: Allowed},
	{name: "home directory of another user", policies: []string{homeDir}, req: id("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/bob/notes.txt"),
		ctx: map[string][]string{"aws:username": {"alice"}}, want: ImplicitDeny},
	{name: "variable absent: resource matches nothing", policies: []string{homeDir}, req: id("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home//notes.txt"), want: ImplicitDeny},
	{name: "substituted text is literal", policies: []string{homeDir}, req: id("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/bob/notes.txt"),
		ctx: map[string][]string{"aws:username": {"*"}}, want: ImplicitDeny},
	{name: "list the root prefix", policies: []string{homeDir}, req: id("s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"),
		ctx: map[string][]string{"aws:username": {"alice"}, "s3:prefix": {""}}, want: Allowed},
	{name: "list the own prefix", policies: []string{homeDir}, req: id("s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"),
		ctx: map[string][]string{"aws:username": {"alice"}, "s3:prefix": {"home/alice/docs"}}, want: Allowed},
	{name: "list another prefix", policies: []string{homeDir}, req: id("s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"),
		ctx: map[string][]string{"aws:username": {"alice"}, "s3:prefix": {"home/bob/"}}, want: ImplicitDeny},
	{name: "2008 policy: variables are literal", policies: []string{homeDir2008}, req: id("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/alice/x"),
		ctx: map[string][]string{"aws:username": {"alice"}}, want: ImplicitDeny},
	{name: "2008 policy: the literal ${} text matches", policies: []string{homeDir2008}, req: id("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/home/${aws:username}/x"), want: Allowed},
	{name: "variable default used", policies: []string{varDefault}, req: id("s3:GetObject", "arn:aws:s3:::b/shared/x"), want: Allowed},
	{name: "variable default not used when the tag is set", policies: []string{varDefault}, req: id("s3:GetObject", "arn:aws:s3:::b/shared/x"),
		ctx: map[string][]string{"aws:PrincipalTag/team": {"blue"}}, want: ImplicitDeny},
	{name: "${*} is a literal star", policies: []string{varEscape}, req: id("s3:GetObject", "arn:aws:s3:::b/*"), want: Allowed},
	{name: "${*} is no wildcard", policies: []string{varEscape}, req: id("s3:GetObject", "arn:aws:s3:::b/x"), want: ImplicitDeny},
	{name: "variable in a condition value", policies: []string{varCond}, req: id("ec2:StopInstances", "*"),
		ctx: map[string][]string{"aws:username": {"alice"}, "aws:ResourceTag/owner": {"alice"}}, want: Allowed},
	{name: "variable in a condition value, other owner", policies: []string{varCond}, req: id("ec2:StopInstances", "*"),
		ctx: map[string][]string{"aws:username": {"alice"}, "aws:ResourceTag/owner": {"bob"}}, want: ImplicitDeny},

	// Conditions: keys case-insensitive, values OR, keys AND, negation AND.
	{name: "condition key case-insensitive", policies: []string{tagJob}, req: id("iam:CreateAccessKey", "arn:aws:iam::111122223333:user/bob"),
		ctx: map[string][]string{"AWS:PRINCIPALTAG/JOB-CATEGORY": {"iamuser-admin"}}, want: Allowed},
	{name: "StringEquals value case-sensitive", policies: []string{tagJob}, req: id("iam:CreateAccessKey", "arn:aws:iam::111122223333:user/bob"),
		ctx: map[string][]string{"aws:PrincipalTag/job-category": {"IAMUSER-ADMIN"}}, want: ImplicitDeny},
	{name: "missing key fails a positive operator", policies: []string{tagJob}, req: id("iam:CreateAccessKey", "arn:aws:iam::111122223333:user/bob"), want: ImplicitDeny},
	{name: "values OR: second value", policies: []string{orAnd}, req: id("ec2:StartInstances", "*"),
		ctx: map[string][]string{"aws:PrincipalTag/team": {"b"}, "aws:RequestedRegion": {"us-west-2"}}, want: Allowed},
	{name: "keys AND: one key fails", policies: []string{orAnd}, req: id("ec2:StartInstances", "*"),
		ctx: map[string][]string{"aws:PrincipalTag/team": {"b"}, "aws:RequestedRegion": {"us-east-1"}}, want: ImplicitDeny},
	{name: "negated values AND: listed region not denied", policies: []string{adminAll, notEq}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"aws:RequestedRegion": {"eu-west-1"}}, want: Allowed},
	{name: "negated values AND: other region denied", policies: []string{adminAll, notEq}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"aws:RequestedRegion": {"ap-south-1"}}, want: ExplicitDeny},
	{name: "negated operator: missing key holds", policies: []string{adminAll, notEq}, req: id("iam:ListRoles", "*"), want: ExplicitDeny},
	{name: "date window inside", policies: []string{window}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"aws:CurrentTime": {"2020-05-01T12:00:00Z"}}, want: Allowed},
	{name: "date window after", policies: []string{window}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"aws:CurrentTime": {"2020-07-01T00:00:00Z"}}, want: ImplicitDeny},
	{name: "date as epoch seconds", policies: []string{window}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"aws:CurrentTime": {"1588334400"}}, want: Allowed},
	{name: "source IP inside an allowed range", policies: []string{adminAll, ipDeny}, req: id("s3:GetObject", "arn:aws:s3:::b/k"),
		ctx: map[string][]string{"aws:SourceIp": {"203.0.113.7"}, "aws:ViaAWSService": {"false"}}, want: Allowed},
	{name: "source IP outside", policies: []string{adminAll, ipDeny}, req: id("s3:GetObject", "arn:aws:s3:::b/k"),
		ctx: map[string][]string{"aws:SourceIp": {"198.51.100.1"}, "aws:ViaAWSService": {"false"}}, want: ExplicitDeny},
	{name: "source IP outside but via a service", policies: []string{adminAll, ipDeny}, req: id("s3:GetObject", "arn:aws:s3:::b/k"),
		ctx: map[string][]string{"aws:SourceIp": {"198.51.100.1"}, "aws:ViaAWSService": {"true"}}, want: Allowed},
	{name: "ForAllValues: subset allowed", policies: []string{tagKeysAll}, req: id("ec2:CreateTags", "*"),
		ctx: map[string][]string{"aws:TagKeys": {"environment"}}, want: Allowed},
	{name: "ForAllValues: an unlisted key", policies: []string{tagKeysAll}, req: id("ec2:CreateTags", "*"),
		ctx: map[string][]string{"aws:TagKeys": {"environment", "owner"}}, want: ImplicitDeny},
	{name: "ForAllValues: no keys at all holds", policies: []string{tagKeysAll}, req: id("ec2:CreateTags", "*"), want: Allowed},
	{name: "ForAnyValue: one listed key", policies: []string{tagKeysAny}, req: id("ec2:CreateTags", "*"),
		ctx: map[string][]string{"aws:TagKeys": {"owner", "cost-center"}}, want: Allowed},
	{name: "ForAnyValue: no keys fails", policies: []string{tagKeysAny}, req: id("ec2:CreateTags", "*"), want: ImplicitDeny},
	{name: "Null false: temporary credentials", policies: []string{tempOnly}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"aws:TokenIssueTime": {"2024-01-01T00:00:00Z"}}, want: Allowed},
	{name: "Null false: long-term keys", policies: []string{tempOnly}, req: id("ec2:RunInstances", "*"), want: ImplicitDeny},
	{name: "numeric within", policies: []string{maxKeys}, req: id("s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"),
		ctx: map[string][]string{"s3:max-keys": {"10"}}, want: Allowed},
	{name: "numeric above", policies: []string{maxKeys}, req: id("s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"),
		ctx: map[string][]string{"s3:max-keys": {"11"}}, want: ImplicitDeny},
	{name: "numeric not a number", policies: []string{maxKeys}, req: id("s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket"),
		ctx: map[string][]string{"s3:max-keys": {"ten"}}, want: ImplicitDeny},
	{name: "ArnLike per segment", policies: []string{arnLike}, req: id("sns:Publish", "*"),
		ctx: map[string][]string{"aws:SourceArn": {"arn:aws:s3:::amzn-s3-demo-bucket"}}, want: Allowed},
	{name: "ArnLike other bucket", policies: []string{arnLike}, req: id("sns:Publish", "*"),
		ctx: map[string][]string{"aws:SourceArn": {"arn:aws:s3:::other"}}, want: ImplicitDeny},
	{name: "ArnLike not an ARN", policies: []string{arnLike}, req: id("sns:Publish", "*"),
		ctx: map[string][]string{"aws:SourceArn": {"amzn-s3-demo-bucket"}}, want: ImplicitDeny},
	{name: "IfExists: key absent holds", policies: []string{ifExists}, req: id("ec2:RunInstances", "*"), want: Allowed},
	{name: "IfExists: key present must match", policies: []string{ifExists}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"ec2:InstanceType": {"m5.large"}}, want: ImplicitDeny},
	{name: "IfExists: key present and matching", policies: []string{ifExists}, req: id("ec2:RunInstances", "*"),
		ctx: map[string][]string{"ec2:InstanceType": {"t2.micro"}}, want: Allowed},

	// Trust policies: Principal, NotPrincipal and the web identity conditions.
	{name: "IRSA: the service account", kind: Trust, policies: []string{irsaTrust}, req: withPrincipal(webIdentity, "sts:AssumeRoleWithWebIdentity", ""),
		ctx: map[string][]string{irsaSub: {"system:serviceaccount:default:my-service-account"}, irsaAud: {"sts.amazonaws.com"}}, want: Allowed},
	{name: "IRSA: another service account", kind: Trust, policies: []string{irsaTrust}, req: withPrincipal(webIdentity, "sts:AssumeRoleWithWebIdentity", ""),
		ctx: map[string][]string{irsaSub: {"system:serviceaccount:default:other"}, irsaAud: {"sts.amazonaws.com"}}, want: ImplicitDeny},
	{name: "IRSA: another audience", kind: Trust, policies: []string{irsaTrust}, req: withPrincipal(webIdentity, "sts:AssumeRoleWithWebIdentity", ""),
		ctx: map[string][]string{irsaSub: {"system:serviceaccount:default:my-service-account"}, irsaAud: {"other"}}, want: ImplicitDeny},
	{name: "IRSA: another provider", kind: Trust, policies: []string{irsaTrust},
		req: withPrincipal(Principal{Type: "Federated", IDs: []string{"arn:aws:iam::111122223333:oidc-provider/evil.example"}}, "sts:AssumeRoleWithWebIdentity", ""),
		ctx: map[string][]string{irsaSub: {"system:serviceaccount:default:my-service-account"}, irsaAud: {"sts.amazonaws.com"}}, want: ImplicitDeny},
	{name: "IRSA: a role session is not the provider", kind: Trust, policies: []string{irsaTrust}, req: withPrincipal(ciSession, "sts:AssumeRoleWithWebIdentity", ""),
		ctx: map[string][]string{irsaSub: {"system:serviceaccount:default:my-service-account"}, irsaAud: {"sts.amazonaws.com"}}, want: ImplicitDeny},
	{name: "IRSA: AssumeRole is another action", kind: Trust, policies: []string{irsaTrust}, req: withPrincipal(webIdentity, "sts:AssumeRole", ""),
		ctx: map[string][]string{irsaSub: {"system:serviceaccount:default:my-service-account"}, irsaAud: {"sts.amazonaws.com"}}, want: ImplicitDeny},
	{name: "IRSA: StringLike namespace", kind: Trust, policies: []string{irsaTrustLike},
		req: withPrincipal(Principal{Type: "Federated", IDs: []string{"arn:aws:iam::111122223333:oidc-provider/oidc.example"}}, "sts:AssumeRoleWithWebIdentity", ""),
		ctx: map[string][]string{"oidc.example:sub": {"system:serviceaccount:team-a:api"}}, want: Allowed},
	{name: "IRSA: StringLike other namespace", kind: Trust, policies: []string{irsaTrustLike},
		req: withPrincipal(Principal{Type: "Federated", IDs: []string{"arn:aws:iam::111122223333:oidc-provider/oidc.example"}}, "sts:AssumeRoleWithWebIdentity", ""),
		ctx: map[string][]string{"oidc.example:sub": {"system:serviceaccount:team-b:api"}}, want: ImplicitDeny},
	{name: "service principal", kind: Trust, policies: []string{ec2Trust}, req: withPrincipal(Principal{Type: "Service", IDs: []string{"ec2.amazonaws.com"}}, "sts:AssumeRole", ""), want: Allowed},
	{name: "other service principal", kind: Trust, policies: []string{ec2Trust}, req: withPrincipal(Principal{Type: "Service", IDs: []string{"lambda.amazonaws.com"}}, "sts:AssumeRole", ""), want: ImplicitDeny},
	{name: "account root names every principal of the account", kind: Trust, policies: []string{acctTrust}, req: withPrincipal(devSession, "sts:AssumeRole", ""), want: Allowed},
	{name: "account root: another account", kind: Trust, policies: []string{acctTrust}, req: withPrincipal(otherAcct, "sts:AssumeRole", ""), want: ImplicitDeny},
	{name: "role principal: its sessions", kind: Trust, policies: []string{roleTrust}, req: withPrincipal(ciSession, "sts:AssumeRole", ""), want: Allowed},
	{name: "role principal: another role", kind: Trust, policies: []string{roleTrust}, req: withPrincipal(devSession, "sts:AssumeRole", ""), want: ImplicitDeny},
	{name: "role principal: same name in another account", kind: Trust, policies: []string{roleTrust}, req: withPrincipal(otherAcct, "sts:AssumeRole", ""), want: ImplicitDeny},
	{name: "NotPrincipal deny spares the named role", kind: Trust, policies: []string{notPrincipal}, req: withPrincipal(ciSession, "sts:AssumeRole", ""), want: Allowed},
	{name: "NotPrincipal deny hits the others", kind: Trust, policies: []string{notPrincipal}, req: withPrincipal(devSession, "sts:AssumeRole", ""), want: ExplicitDeny},
}

func TestEvaluate(t *testing.T) {
	for _, c := range evalCases {
		t.Run(c.name, func(t *testing.T) {
			var ps []*Policy
			for _, doc := range c.policies {
				p, err := Parse(doc, c.kind)
				if err != nil {
					t.Fatalf("parsing %s: %v", doc, err)
				}
				ps = append(ps, p)
			}
			req := c.req
			req.Context = NewContext(c.ctx)
			if got := Evaluate(&req, ps...); got != c.want {
				t.Errorf("Evaluate = %v, want %v", got, c.want)
			}
		})
	}
}
