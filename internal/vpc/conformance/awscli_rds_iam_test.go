package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/cli"
	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// rdsIAM is a local VPC on the netns data path with a database that has IAM database
// authentication on, a client instance allowed to reach it, and awscli and psql to drive them.
type rdsIAM struct {
	url, stateDir, clientNS string
	dbHost, dbiResourceID   string
	aws                     string
	server                  *testenv.Process
}

// TestAWSCLIRDSIAMAuth is IAM roles for service accounts and RDS IAM database authentication
// with real clients and a real apiserver. The apiserver is the cluster's service-account
// issuer, published as `podsg demo` publishes it (localcluster.PublishServiceAccountIssuer);
// awscli registers it (create-open-id-connect-provider) and creates a role whose trust policy
// names one ServiceAccount (ISSUER:sub, ISSUER:aud) with rds-db:connect on one database user.
// podsg's pod identity webhook gives a pod of that ServiceAccount the role; the apiserver issues
// the pod's projected token as it does for the kubelet (TokenRequest with the volume's audience
// and lifetime, bound to the pod); `aws sts assume-role-with-web-identity` exchanges it at the
// local STS, `aws rds generate-db-auth-token` signs with those credentials, and psql, inside an
// instance of the database clients' security group, logs in. A good token connects; an expired
// one, one for another user, one for another host and one of a role without the permission
// get exactly PostgreSQL's PAM failure, as on RDS. A pod of another ServiceAccount whose
// annotation names the same role gets STS's AccessDenied (see testOtherServiceAccount).
// Password users keep working.
func TestAWSCLIRDSIAMAuth(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.AWSCLI, testenv.PostgreSQL, testenv.PAMScript, testenv.PSQL)
	e := startRDSIAM(t)
	kube := startIdentityCluster(t, e.url)

	e.psql(t, "postgres", "secretpass", "CREATE USER alice; GRANT rds_iam TO alice; CREATE USER bob; GRANT rds_iam TO bob; CREATE USER carol PASSWORD 'carolpass'")
	resource := fmt.Sprintf("arn:aws:rds-db:us-west-2:111122223333:dbuser:%s/alice", e.dbiResourceID)
	iss := e.registerIssuer(t, kube)
	role := e.serviceAccountRole(t, iss, "rds-db-access", kube.ns, "rds-db-access",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"`+resource+`"}]}`)
	app := kube.pod(t, "rds-db-access", role)
	allowed := e.podCredentials(t, kube, app, role)
	denied := e.role(t, "no-rds", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`)

	token := func(creds []string, host, user string) string {
		return strings.TrimSpace(e.awsAs(t, creds, "rds", "generate-db-auth-token", "--hostname", host, "--port", "5432", "--username", user))
	}
	pamFailed := func(user string) string { return `FATAL:  PAM authentication failed for user "` + user + `"` }
	if out := e.psql(t, "alice", token(allowed, e.dbHost, "alice"), "SELECT current_user"); out != "alice" {
		t.Fatalf("alice with a good token: %q", out)
	}
	failures := map[string]struct{ user, token string }{
		"expired":                     {"alice", expiredToken(t, allowed, e.dbHost, "alice")},
		"token of another user":       {"bob", token(allowed, e.dbHost, "alice")},
		"token for another host":      {"alice", token(allowed, "10.78.0.99", "alice")},
		"role without the permission": {"alice", token(denied, e.dbHost, "alice")},
		"user not in the policy":      {"bob", token(allowed, e.dbHost, "bob")},
		"a password":                  {"alice", "secretpass"},
	}
	for name, f := range failures {
		t.Run(name, func(t *testing.T) {
			out, err := e.psqlErr(t, f.user, f.token, "SELECT 1")
			if err == nil || !strings.Contains(out, pamFailed(f.user)) {
				t.Fatalf("psql as %s: %v, output %q; want %q", f.user, err, out, pamFailed(f.user))
			}
		})
	}
	other := kube.pod(t, "reports-reader", role)
	t.Run("a role whose trust policy names another ServiceAccount", func(t *testing.T) { e.testOtherServiceAccount(t, kube, other, role) })
	t.Run("podsg explain pod --db", func(t *testing.T) {
		e.testExplainDB(t, kube, app, other, kube.pod(t, "no-rds", "arn:aws:iam::111122223333:role/no-rds"), resource)
	})
	t.Run("the pod's environment, as boto3 reads it", func(t *testing.T) { e.testPodEnvironment(t, kube, app, "alice") })
	t.Run("a token for another audience", func(t *testing.T) {
		out, err := e.assumeWebIdentity(t, role, kube.token(t, "rds-db-access", "another-audience", nil, nil))
		if err == nil || !strings.Contains(out, "InvalidIdentityToken") || !strings.Contains(out, "Incorrect token audience") {
			t.Fatalf("assume-role-with-web-identity with a token for another audience: %v\n%s", err, out)
		}
	})
	if out := e.psql(t, "carol", "carolpass", "SELECT current_user"); out != "carol" {
		t.Fatalf("password user carol: %q", out)
	}

	// Switched off, the rds_iam users go to password authentication like everyone else.
	e.awsAs(t, nil, "rds", "modify-db-instance", "--db-instance-identifier", "iam-db", "--no-enable-iam-database-authentication", "--apply-immediately")
	out, err := e.psqlErr(t, "alice", token(allowed, e.dbHost, "alice"), "SELECT 1")
	if want := `FATAL:  password authentication failed for user "alice"`; err == nil || !strings.Contains(out, want) {
		t.Fatalf("alice with IAM authentication off: %v, %q; want %q", err, out, want)
	}
}

// testOtherServiceAccount is the acceptance case "the role's trust policy names another
// ServiceAccount": ServiceAccount reports-reader is annotated with the role, so the webhook
// gives its pod AWS_ROLE_ARN and a token, but the role trusts only rds-db-access's tokens
// (ISSUER:sub). STS refuses the exchange with AccessDenied, as AWS does: on AWS the pod never
// gets the role's credentials, so it never reaches the database with that role (the SDK's
// web identity provider fails; the database sees nothing, or, if the application falls back to
// other credentials, those credentials' PAM failure).
func (e *rdsIAM) testOtherServiceAccount(t *testing.T, kube *identityCluster, p *corev1.Pod, role string) {
	arn, token := kube.projectedToken(t, p)
	if arn != role {
		t.Fatalf("pod of reports-reader: AWS_ROLE_ARN = %q, want %q", arn, role)
	}
	out, err := e.assumeWebIdentity(t, arn, token)
	if err == nil || !strings.Contains(out, "AccessDenied") || !strings.Contains(out, "Not authorized to perform sts:AssumeRoleWithWebIdentity") {
		t.Fatalf("assume-role-with-web-identity with reports-reader's token: %v\n%s\nwant AccessDenied", err, out)
	}
}

func startRDSIAM(t *testing.T) *rdsIAM {
	t.Helper()
	awsBin, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL runs as user postgres and must traverse the state dir: t.TempDir is 0700.
	dir, err := os.MkdirTemp("", "podsg-rdsiam-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	e := &rdsIAM{stateDir: filepath.Join(dir, "vpc"), aws: awsBin}
	creds := writeCredentials(t, dir)
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	// Registered before the server starts, so it runs after the server has stopped.
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "cleanup", "--state-dir", e.stateDir).CombinedOutput(); err != nil {
			t.Errorf("podsg-vpc cleanup: %v\n%s", err, out)
		}
	})
	p, err := testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", e.stateDir, "--dataplane", "netns", "--credentials", creds)
	if err != nil {
		t.Fatal(err)
	}
	e.url, e.server = testenv.ListeningURL(t, p, "podsg-vpc listening on "), p
	t.Cleanup(func() { e.deleteDB(t) }) // before the server stops: it removes the PAM service file
	c := vpctest.NewClient(e.url, keyID, secret)
	net := vpctest.NewTutorial(t, c, "10.78.0.0/16", "10.78.0.0/20")
	run, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), SubnetId: aws.String(net.Subnet),
		SecurityGroupIds: []string{net.ClientSG}, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	e.clientNS = topo.Names{ID: topo.IDFromStateDir(e.stateDir)}.Instance(*run.Instances[0].InstanceId)
	var db struct {
		DBInstance struct {
			DbiResourceID                    string `json:"DbiResourceId"`
			IAMDatabaseAuthenticationEnabled bool
			Endpoint                         struct{ Address string }
		}
	}
	out := e.awsAs(t, nil, "rds", "create-db-instance", "--db-instance-identifier", "iam-db", "--engine", "postgres",
		"--db-instance-class", "db.t3.micro", "--master-username", "postgres", "--master-user-password", "secretpass",
		"--vpc-security-group-ids", net.DBSG, "--enable-iam-database-authentication")
	if err := json.Unmarshal([]byte(out), &db); err != nil || !db.DBInstance.IAMDatabaseAuthenticationEnabled || !strings.HasPrefix(db.DBInstance.DbiResourceID, "db-") {
		t.Fatalf("create-db-instance: %v\n%s", err, out)
	}
	e.dbHost, e.dbiResourceID = db.DBInstance.Endpoint.Address, db.DBInstance.DbiResourceID
	return e
}

// deleteDB deletes the database (its PAM service file with it) while the server still runs.
func (e *rdsIAM) deleteDB(t *testing.T) {
	cmd := e.awsCmd(context.Background(), nil, "rds", "delete-db-instance", "--db-instance-identifier", "iam-db", "--skip-final-snapshot")
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "DBInstanceNotFound") {
		t.Errorf("delete-db-instance: %v\n%s", err, out)
	}
}

// role creates a role the account may assume with policy inline and returns its temporary
// credentials (access key, secret, session token).
func (e *rdsIAM) role(t *testing.T, name, policy string) []string {
	t.Helper()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}`
	e.createRole(t, name, trust, policy)
	return e.credentials(t, "assume-role", "--role-arn", "arn:aws:iam::111122223333:role/"+name, "--role-session-name", "test")
}

// testPodEnvironment runs awscli (botocore, the SDK under the seed's boto3) with nothing but
// the AWS_ variables the webhook gave the pod's container, as postgres_test_iam.py runs: its
// default credential chain finds AWS_ROLE_ARN and the token file and calls
// AssumeRoleWithWebIdentity at AWS_ENDPOINT_URL_STS (the local VPC); generate-db-auth-token
// signs with the credentials it got, and psql connects as user with the token. The token file
// holds the pod's projected token, at a path of the test's instead of the volume's mount
// (the kubelet's part). Instance metadata is switched off: the chain must not fall back to it.
func (e *rdsIAM) testPodEnvironment(t *testing.T, kube *identityCluster, p *corev1.Pod, user string) {
	_, token := kube.projectedToken(t, p)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true"}
	for _, v := range p.Spec.Containers[0].Env {
		switch {
		case v.Name == podidentity.EnvTokenFile:
			env = append(env, v.Name+"="+tokenFile)
		case strings.HasPrefix(v.Name, "AWS_"):
			env = append(env, v.Name+"="+v.Value)
		}
	}
	aws := func(args ...string) string {
		cmd := exec.CommandContext(t.Context(), e.aws, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s with the pod's environment %v: %v\n%s\nserver log:\n%s", strings.Join(args, " "), env, err, out, e.server.LogTail())
		}
		return strings.TrimSpace(string(out))
	}
	if arn := aws("sts", "get-caller-identity", "--query", "Arn", "--output", "text"); !strings.HasPrefix(arn, "arn:aws:sts::111122223333:assumed-role/rds-db-access/") {
		t.Fatalf("get-caller-identity with the pod's environment: %q, want a session of rds-db-access", arn)
	}
	authToken := aws("rds", "generate-db-auth-token", "--hostname", e.dbHost, "--port", "5432", "--username", user)
	if out := e.psql(t, user, authToken, "SELECT current_user"); out != user {
		t.Fatalf("psql as %s with the pod's token: %q", user, out)
	}
}

// testExplainDB runs `podsg explain pod --db` (the command line, in process) against the
// same apiserver, local VPC and database: the webhook gave app its role, which its token may
// assume and which may connect as alice (the user psql logged in as); other's token may not
// assume that role (STS said AccessDenied above); the role of noRDS may not connect, and explain
// says the database answers with the PAM failure psql saw.
func (e *rdsIAM) testExplainDB(t *testing.T, kube *identityCluster, app, other, noRDS *corev1.Pod, resource string) {
	t.Setenv("AWS_ACCESS_KEY_ID", keyID) // podsg-vpc runs with --credentials
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	explain := func(p *corev1.Pod, args ...string) string {
		var out, errOut bytes.Buffer
		args = append([]string{"explain", "pod", p.Namespace + "/" + p.Name, "--kubeconfig", kube.env.Kubeconfig, "--region", "us-west-2",
			"--ec2-endpoint", e.url, "--db", "iam-db"}, args...)
		if code := cli.Run(t.Context(), args, &out, &errOut); code != 0 {
			t.Fatalf("podsg %s: exit code %d\n%s%s", strings.Join(args, " "), code, out.String(), errOut.String())
		}
		return out.String()
	}
	expect := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("podsg explain lacks %q:\n%s", w, out)
			}
		}
	}
	sub := func(p *corev1.Pod) string {
		return "system:serviceaccount:" + p.Namespace + ":" + p.Spec.ServiceAccountName
	}
	expect(explain(app),
		"  role:             arn:aws:iam::111122223333:role/rds-db-access (eks.amazonaws.com/role-arn",
		"  token volume:     aws-iam-token: projected ServiceAccount token, audience \"sts.amazonaws.com\", 86400 s",
		"    app: role arn:aws:iam::111122223333:role/rds-db-access, token file /var/run/secrets/eks.amazonaws.com/serviceaccount/token, aws-iam-token mounted",
		"  assume role:      "+sub(app)+" (audience \"sts.amazonaws.com\"): ALLOWED by STS (allowed by statement 1 of the trust policy)",
		"  database:         iam-db (DbiResourceId "+e.dbiResourceID+", IAM database authentication enabled)",
		"  rds-db:connect:   as alice: ALLOWED on "+resource,
		"Role arn:aws:iam::111122223333:role/rds-db-access may rds-db:connect to iam-db (DbiResourceId "+e.dbiResourceID+") as alice.")
	expect(explain(other),
		"  assume role:      "+sub(other)+" (audience \"sts.amazonaws.com\"): DENIED by STS (no statement allows it (implicit deny): STS answers AccessDenied)",
		"Role arn:aws:iam::111122223333:role/rds-db-access does not let the pod's token assume it ("+sub(other)+", sts.amazonaws.com)",
		"The pod never gets the role's credentials, so it never reaches iam-db with this role.")
	expect(explain(noRDS, "--db-user", "alice"),
		"  rds-db:connect:   as alice: DENIED on "+resource,
		`The database answers PAM authentication failed for user "alice".`)
}

// registerIssuer publishes the apiserver's service-account issuer as `podsg demo` does and
// registers it with awscli, as eksctl's `utils associate-iam-oidc-provider` does on AWS.
func (e *rdsIAM) registerIssuer(t *testing.T, kube *identityCluster) localcluster.Issuer {
	t.Helper()
	iss, err := localcluster.PublishServiceAccountIssuer(t.Context(), kube.env.Kubectl, kube.env.Config.CAData)
	if err != nil {
		t.Fatal(err)
	}
	arn := strings.TrimSpace(e.awsAs(t, nil, "iam", "create-open-id-connect-provider", "--url", iss.URL, "--client-id-list", "sts.amazonaws.com",
		"--thumbprint-list", iss.Thumbprint, "--query", "OpenIDConnectProviderArn", "--output", "text"))
	if want := "arn:aws:iam::111122223333:oidc-provider/" + iss.Host; arn != want {
		t.Fatalf("create-open-id-connect-provider: ARN %q, want %q", arn, want)
	}
	return iss
}

// serviceAccountRole is `eksctl create iamserviceaccount`'s role: trusted by the issuer's
// tokens for ServiceAccount ns/sa with audience sts.amazonaws.com only, with policy inline.
// It returns the role's ARN.
func (e *rdsIAM) serviceAccountRole(t *testing.T, iss localcluster.Issuer, name, ns, sa, policy string) string {
	t.Helper()
	provider := "arn:aws:iam::111122223333:oidc-provider/" + iss.Host
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + provider + `"},"Action":"sts:AssumeRoleWithWebIdentity",
		"Condition":{"StringEquals":{"` + iss.Host + `:sub":"system:serviceaccount:` + ns + `:` + sa + `","` + iss.Host + `:aud":"sts.amazonaws.com"}}}]}`
	e.createRole(t, name, trust, policy)
	return "arn:aws:iam::111122223333:role/" + name
}

// podCredentials are what pod p, which the webhook gave role, gets: the apiserver issues its
// projected token and awscli exchanges it for the role's credentials (access key, secret,
// session token) at the role the pod's AWS_ROLE_ARN names.
func (e *rdsIAM) podCredentials(t *testing.T, kube *identityCluster, p *corev1.Pod, role string) []string {
	t.Helper()
	arn, token := kube.projectedToken(t, p)
	if arn != role {
		t.Fatalf("pod %s: AWS_ROLE_ARN = %q, want %q", p.Name, arn, role)
	}
	out, err := e.assumeWebIdentity(t, arn, token)
	if err != nil {
		t.Fatalf("assume-role-with-web-identity: %v\n%s\nserver log:\n%s", err, out, e.server.LogTail())
	}
	f := strings.Fields(out)
	if len(f) != 3 || !strings.HasPrefix(f[0], "ASIA") {
		t.Fatalf("assume-role-with-web-identity: %q", out)
	}
	return f
}

// assumeWebIdentity runs `aws sts assume-role-with-web-identity` (unsigned, as the SDKs call
// it) and returns its credentials as text, or its error output.
func (e *rdsIAM) assumeWebIdentity(t *testing.T, role, token string) (string, error) {
	t.Helper()
	out, err := e.awsCmd(t.Context(), nil, "sts", "assume-role-with-web-identity", "--role-arn", role, "--role-session-name", "pod",
		"--web-identity-token", token, "--query", "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]", "--output", "text").CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e *rdsIAM) createRole(t *testing.T, name, trust, policy string) {
	t.Helper()
	e.awsAs(t, nil, "iam", "create-role", "--role-name", name, "--assume-role-policy-document", trust)
	e.awsAs(t, nil, "iam", "put-role-policy", "--role-name", name, "--policy-name", "db", "--policy-document", policy)
}

// credentials runs an STS action and returns its credentials (access key, secret, session token).
func (e *rdsIAM) credentials(t *testing.T, args ...string) []string {
	t.Helper()
	out := e.awsAs(t, nil, append(append([]string{"sts"}, args...), "--query", "Credentials.[AccessKeyId,SecretAccessKey,SessionToken]", "--output", "text")...)
	f := strings.Fields(out)
	if len(f) != 3 || !strings.HasPrefix(f[0], "ASIA") {
		t.Fatalf("sts %s: %q", args[0], out)
	}
	return f
}

// awsAs runs awscli with creds (the account's long-term key when nil) and returns its output.
func (e *rdsIAM) awsAs(t *testing.T, creds []string, args ...string) string {
	t.Helper()
	out, err := e.awsCmd(t.Context(), creds, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *rdsIAM) awsCmd(ctx context.Context, creds []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.aws, append([]string{"--endpoint-url", e.url, "--output", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-west-2", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_SESSION_TOKEN=")
	if creds != nil {
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID="+creds[0], "AWS_SECRET_ACCESS_KEY="+creds[1], "AWS_SESSION_TOKEN="+creds[2])
	}
	return cmd
}

// psqlErr runs psql as user with password inside the client instance's namespace.
func (e *rdsIAM) psqlErr(t *testing.T, user, password, sql string) (string, error) {
	t.Helper()
	conn := fmt.Sprintf("host=%s port=5432 dbname=postgres user=%s sslmode=disable connect_timeout=10", e.dbHost, user)
	cmd := exec.CommandContext(t.Context(), "ip", "netns", "exec", e.clientNS, "psql", conn, "-w", "-tAc", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e *rdsIAM) psql(t *testing.T, user, password, sql string) string {
	t.Helper()
	out, err := e.psqlErr(t, user, password, sql)
	if err != nil {
		t.Fatalf("psql as %s: %v\n%s\nserver log:\n%s", user, err, out, e.server.LogTail())
	}
	return out
}

// expiredToken is BuildAuthToken's token (the SDK's signer, its 900 s expiry) signed 16
// minutes ago: awscli always signs now.
func expiredToken(t *testing.T, creds []string, host, user string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://"+host+":5432/?Action=connect&DBUser="+user+"&X-Amz-Expires=900", nil)
	if err != nil {
		t.Fatal(err)
	}
	signed, _, err := v4.NewSigner().PresignHTTP(t.Context(), aws.Credentials{AccessKeyID: creds[0], SecretAccessKey: creds[1], SessionToken: creds[2]},
		req, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "rds-db", "us-west-2", time.Now().Add(-16*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(signed, "https://")
}
