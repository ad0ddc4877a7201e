package pgcheck_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/oidc/oidctest"
	"github.com/podsg/podsg/internal/vpc/rdsiam"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// localRDS is a local VPC (podsg-vpc on the netns data path) with a PostgreSQL instance that
// has IAM database authentication on, and an instance of its clients' security group.
type localRDS struct {
	url, clientNS, dbHost, dbi string
	iam                        *iam.Client
}

const (
	rdsKey, rdsSecret = "AKIDPGCHECK", "s3cr3t-pgcheck"
	// inVPCEndpoint is the local VPC's API as an instance reaches it (topo.APIPort).
	inVPCEndpoint = "http://169.254.169.254:8450"
)

// TestIAMAgainstLocalRDS runs the pgcheck binary in a client instance of the local VPC as the
// seed's pod runs postgres_test_iam.py: its role's credentials from a web identity token
// through the STS endpoint instances reach, a token, a connection to the RDS instance's
// endpoint. The role allowed rds-db:connect as alice prints the server version; a role
// without it gets RDS's PAM failure, verbatim as psycopg2 prints it.
func TestIAMAgainstLocalRDS(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.PostgreSQL, testenv.PAMScript, testenv.PSQL)
	e := startLocalRDS(t)
	e.psql(t, "postgres", "secretpass", "CREATE USER alice; GRANT rds_iam TO alice")
	iss := oidctest.Start(t)
	prov, err := e.iam.CreateOpenIDConnectProvider(t.Context(), &iam.CreateOpenIDConnectProviderInput{Url: aws.String(iss.URL), ClientIDList: []string{"sts.amazonaws.com"}})
	if err != nil {
		t.Fatalf("CreateOpenIDConnectProvider: %v", err)
	}
	sa := "system:serviceaccount:default:rds-db-access"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(iss.Sign(t, iss.Claims(sa, "sts.amazonaws.com", time.Now(), time.Hour))), 0o600); err != nil {
		t.Fatal(err)
	}
	resource := rdsiam.ResourceARN(vpctest.Region, state.AccountID, e.dbi, "alice")
	e.webIdentityRole(t, "rds-db-access", aws.ToString(prov.OpenIDConnectProviderArn), strings.TrimPrefix(iss.URL, "http://"), sa,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":"`+resource+`"}]}`)
	e.webIdentityRole(t, "no-rds", aws.ToString(prov.OpenIDConnectProviderArn), strings.TrimPrefix(iss.URL, "http://"), sa,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`)
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/pgcheck")

	run := func(role string) string {
		cmd := exec.CommandContext(t.Context(), "ip", "netns", "exec", e.clientNS, bin, "--auth=iam")
		// What the pod identity webhook gives a pod against the local VPC, and the tutorial's variables.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"AWS_ROLE_ARN=arn:aws:iam::" + state.AccountID + ":role/" + role, "AWS_WEB_IDENTITY_TOKEN_FILE=" + tokenFile,
			"AWS_REGION=" + vpctest.Region, "AWS_DEFAULT_REGION=" + vpctest.Region, "AWS_STS_REGIONAL_ENDPOINTS=regional",
			"AWS_ENDPOINT_URL_STS=" + inVPCEndpoint, "HOST=" + e.dbHost, "DATABASE=postgres", "USER=alice"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("pgcheck as %s: %v\n%s", role, err, out)
		}
		return string(out)
	}
	if got := run("rds-db-access"); !regexp.MustCompile(`^\('PostgreSQL 15\.\d+ .* on .*, 64-bit',\)\n$`).MatchString(got) {
		t.Errorf("role with rds-db:connect: %q", got)
	}
	want := fmt.Sprintf("Database connection failed due to connection to server at %s, port 5432 failed: FATAL:  PAM authentication failed for user \"alice\"\n",
		hostLabel(t, e))
	if got := run("no-rds"); got != want {
		t.Errorf("role without rds-db:connect:\n got %q\nwant %q", got, want)
	}
}

// hostLabel is libpq's name for the server: the address alone when HOST is one, else the
// name and the address it resolved to inside the client's namespace.
func hostLabel(t *testing.T, e *localRDS) string {
	t.Helper()
	if regexp.MustCompile(`^[0-9.]+$`).MatchString(e.dbHost) {
		return `"` + e.dbHost + `"`
	}
	out, err := exec.Command("ip", "netns", "exec", e.clientNS, "getent", "ahostsv4", e.dbHost).Output()
	if err != nil || len(strings.Fields(string(out))) == 0 {
		t.Fatalf("resolving %s in %s: %v %q", e.dbHost, e.clientNS, err, out)
	}
	return fmt.Sprintf("%q (%s)", e.dbHost, strings.Fields(string(out))[0])
}

func startLocalRDS(t *testing.T) *localRDS {
	t.Helper()
	// PostgreSQL runs as user postgres and must traverse the state dir: t.TempDir is 0700.
	dir, err := os.MkdirTemp("", "podsg-pgcheck-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	stateDir, creds := filepath.Join(dir, "vpc"), filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte(rdsKey+" "+rdsSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	// Registered before the server starts, so it runs after the server has stopped.
	t.Cleanup(func() {
		if out, err := exec.Command(bin, "cleanup", "--state-dir", stateDir).CombinedOutput(); err != nil {
			t.Errorf("podsg-vpc cleanup: %v\n%s", err, out)
		}
	})
	p, err := testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", stateDir, "--dataplane", "netns", "--credentials", creds)
	if err != nil {
		t.Fatal(err)
	}
	e := &localRDS{url: testenv.ListeningURL(t, p, "podsg-vpc listening on ")}
	cp := credentials.NewStaticCredentialsProvider(rdsKey, rdsSecret, "")
	e.iam = iam.New(iam.Options{Region: vpctest.Region, Credentials: cp, BaseEndpoint: aws.String(e.url), Retryer: aws.NopRetryer{}})
	db := rds.New(rds.Options{Region: vpctest.Region, Credentials: cp, BaseEndpoint: aws.String(e.url), Retryer: aws.NopRetryer{}})
	c := vpctest.NewClient(e.url, rdsKey, rdsSecret)
	net := vpctest.NewTutorial(t, c, "10.79.0.0/16", "10.79.0.0/20")
	run, err := c.RunInstances(t.Context(), &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), SubnetId: aws.String(net.Subnet),
		SecurityGroupIds: []string{net.ClientSG}, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	e.clientNS = topo.Names{ID: topo.IDFromStateDir(stateDir)}.Instance(*run.Instances[0].InstanceId)
	out, err := db.CreateDBInstance(t.Context(), &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("iam-db"), Engine: aws.String("postgres"),
		DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("postgres"), MasterUserPassword: aws.String("secretpass"),
		VpcSecurityGroupIds: []string{net.DBSG}, EnableIAMDatabaseAuthentication: aws.Bool(true)})
	if err != nil {
		t.Fatalf("CreateDBInstance: %v", err)
	}
	// Deleted while the server still runs (cleanups run last first): it removes the PAM service file.
	t.Cleanup(func() {
		_, err := db.DeleteDBInstance(context.Background(), &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String("iam-db"), SkipFinalSnapshot: aws.Bool(true)})
		if err != nil {
			t.Errorf("DeleteDBInstance: %v", err)
		}
	})
	e.dbHost, e.dbi = aws.ToString(out.DBInstance.Endpoint.Address), aws.ToString(out.DBInstance.DbiResourceId)
	return e
}

// webIdentityRole creates a role that ServiceAccount sa's tokens from the provider may assume,
// with policy inline.
func (e *localRDS) webIdentityRole(t *testing.T, name, provider, issuerHost, sa, policy string) {
	t.Helper()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + provider + `"},"Action":"sts:AssumeRoleWithWebIdentity",` +
		`"Condition":{"StringEquals":{"` + issuerHost + `:sub":"` + sa + `","` + issuerHost + `:aud":"sts.amazonaws.com"}}}]}`
	if _, err := e.iam.CreateRole(t.Context(), &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatalf("CreateRole %s: %v", name, err)
	}
	if _, err := e.iam.PutRolePolicy(t.Context(), &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String("db"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatalf("PutRolePolicy %s: %v", name, err)
	}
}

// psql runs SQL as user inside the client instance's namespace.
func (e *localRDS) psql(t *testing.T, user, password, sql string) {
	t.Helper()
	conn := fmt.Sprintf("host=%s port=5432 dbname=postgres user=%s sslmode=disable connect_timeout=10", e.dbHost, user)
	cmd := exec.CommandContext(t.Context(), "ip", "netns", "exec", e.clientNS, "psql", conn, "-w", "-tAc", sql)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql as %s: %v\n%s", user, err, out)
	}
}
