package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/api/v1beta1"
)

// The seed tutorial's names.
const (
	demoDB       = "podsg-demo-postgres"
	demoPassword = "podsg-demo-password" //nolint:gosec // the throwaway demo database's, printed in the tutorial's pods too
	clientSGName = "RDSDbAccessSG"
	dbSGName     = "RDSDbSG"
)

// DemoResult is what each pod printed, and where it ran.
type DemoResult struct {
	Pod, Node, Log string
	// Groups are the security groups admission resolved for the pod ("" when none matched:
	// the pod uses its node's primary ENI); BranchENI the ENI podsg-controller gave it.
	Groups, BranchENI string
}

// Demo follows the seed tutorial on the local cluster (brought up with one node if needed):
// a security group for database clients, a PostgreSQL "RDS" instance admitting only that
// group, a ServiceAccount labelled role=backend, the tutorial's SecurityGroupPolicy (cluster
// group + client group) and the two pods; it returns what each pod printed.
func Demo(ctx context.Context, o Options, out io.Writer) ([]DemoResult, error) {
	env, err := o.demoSetup(ctx, out)
	if err != nil {
		return nil, err
	}
	role, err := ensureServiceAccountRole(ctx, demoRole, env.provider, env.issuerHost, "default", "rds-db-access", env.resourceID, demoDBUser)
	if err != nil {
		return nil, err
	}
	env.step("IAM role %s: trusts default/rds-db-access's tokens, may rds-db:connect as %s", role, demoDBUser)
	kubectl := env.kubectl
	// Pods from an earlier run go first: a SecurityGroupPolicy applies to new pods only.
	if _, err := kubectl(ctx, "", "delete", "pod", "postgres-test", "postgres-test-no-sa", "--ignore-not-found", "--wait=true"); err != nil {
		return nil, err
	}
	if _, err := kubectl(ctx, demoManifests(env.net.ClusterSG, env.clientSG, env.host, role), "apply", "-f", "-"); err != nil {
		return nil, err
	}
	env.step("ServiceAccount rds-db-access (role: backend, eks.amazonaws.com/role-arn: %s), SecurityGroupPolicy my-sg-policy [%s %s], pods postgres-test and postgres-test-no-sa", role, env.net.ClusterSG, env.clientSG)
	var results []DemoResult
	for _, pod := range []string{"postgres-test", "postgres-test-no-sa"} {
		r, err := waitPodLog(ctx, kubectl, pod)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	return results, nil
}

// demoEnv is what the seed tutorials share on the local cluster: its network, the two
// security groups, the database and the identity layer's cluster-wide parts.
type demoEnv struct {
	net                  *network
	clientSG, dbSG       string
	host, resourceID     string // the database's endpoint hostname and DbiResourceId
	provider, issuerHost string // the cluster's OIDC provider
	kubectl              func(context.Context, string, ...string) (string, error)
	step                 func(string, ...any)
}

// demoSetup brings up the cluster (one node unless told otherwise) and makes, or finds from
// an earlier run, what every tutorial uses: the client and database security groups, the
// database with IAM authentication and its rds_iam user, the OIDC provider and the nodes'
// instance role.
func (o Options) demoSetup(ctx context.Context, out io.Writer) (*demoEnv, error) {
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	if err := Up(ctx, o, out); err != nil {
		return nil, err
	}
	c := EC2Client()
	net, err := ensureNetwork(ctx, c)
	if err != nil {
		return nil, err
	}
	env := &demoEnv{net: net, kubectl: o.kubectl(o.Kubeconfig()),
		step: func(format string, args ...any) { _, _ = fmt.Fprintf(out, "• "+format+"\n", args...) }}
	if env.clientSG, err = ensureGroup(ctx, c, net.VPCID, clientSGName, "Security group to apply to apps that need access to RDS"); err != nil {
		return nil, err
	}
	if env.dbSG, err = ensureGroup(ctx, c, net.VPCID, dbSGName, "RDS database: PostgreSQL from "+clientSGName+" only"); err != nil {
		return nil, err
	}
	if err := allowPostgres(ctx, c, env.dbSG, env.clientSG); err != nil {
		return nil, err
	}
	env.step("security groups: %s %s (database clients), %s %s (database: 5432 from %s only)", clientSGName, env.clientSG, dbSGName, env.dbSG, clientSGName)
	if env.host, env.resourceID, err = ensureDB(ctx, env.dbSG); err != nil {
		return nil, err
	}
	env.step("RDS for PostgreSQL %s at %s:5432 (IAM database authentication on, %s)", demoDB, env.host, env.resourceID)
	if err := o.demoIdentity(ctx, env); err != nil {
		return nil, err
	}
	return env, nil
}

func ensureGroup(ctx context.Context, c *ec2.Client, vpcID, name, desc string) (string, error) {
	have, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{Filters: []types.Filter{filter("vpc-id", vpcID), filter("group-name", name)}})
	if err != nil {
		return "", fmt.Errorf("looking up %s: %w", name, err)
	}
	if len(have.SecurityGroups) > 0 {
		return aws.ToString(have.SecurityGroups[0].GroupId), nil
	}
	out, err := c.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{VpcId: &vpcID, GroupName: &name, Description: &desc})
	if err != nil {
		return "", fmt.Errorf("creating %s: %w", name, err)
	}
	return aws.ToString(out.GroupId), nil
}

func allowPostgres(ctx context.Context, c *ec2.Client, dbSG, from string) error {
	_, err := c.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &dbSG, IpPermissions: []types.IpPermission{{
		IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: &from}}}}})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InvalidPermission.Duplicate" {
		return nil // an earlier run added it
	}
	return err
}

// ensureDB creates the tutorial's database with IAM database authentication (or turns it on
// for one an older demo made) and returns its endpoint hostname and DbiResourceId.
func ensureDB(ctx context.Context, dbSG string) (host, resourceID string, err error) {
	c := RDSClient()
	have, err := c.DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(demoDB)})
	if err == nil && len(have.DBInstances) > 0 && have.DBInstances[0].Endpoint != nil {
		db := have.DBInstances[0]
		if !aws.ToBool(db.IAMDatabaseAuthenticationEnabled) {
			if _, err := c.ModifyDBInstance(ctx, &rds.ModifyDBInstanceInput{DBInstanceIdentifier: aws.String(demoDB),
				EnableIAMDatabaseAuthentication: aws.Bool(true), ApplyImmediately: aws.Bool(true)}); err != nil {
				return "", "", fmt.Errorf("enabling IAM database authentication: %w", err)
			}
		}
		return aws.ToString(db.Endpoint.Address), aws.ToString(db.DbiResourceId), nil
	}
	out, err := c.CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String(demoDB), Engine: aws.String("postgres"),
		DBInstanceClass: aws.String("db.t3.micro"), MasterUsername: aws.String("postgres"), MasterUserPassword: aws.String(demoPassword),
		DBName: aws.String("postgres"), VpcSecurityGroupIds: []string{dbSG}, EnableIAMDatabaseAuthentication: aws.Bool(true)})
	if err != nil {
		return "", "", fmt.Errorf("creating the database: %w", err)
	}
	return aws.ToString(out.DBInstance.Endpoint.Address), aws.ToString(out.DBInstance.DbiResourceId), nil
}

// RDSClient is an SDK client for the local VPC's RDS API on loopback.
func RDSClient() *rds.Client {
	return rds.New(rds.Options{Region: Region, BaseEndpoint: aws.String(APIURL()), Credentials: credentials.NewStaticCredentialsProvider("podsg", "podsg", "")})
}

// demoManifests is the tutorial's YAML with its placeholders filled in.
func demoManifests(clusterSG, clientSG, host, role string) string {
	return `apiVersion: v1
kind: ServiceAccount
metadata:
  name: rds-db-access
  namespace: default
  labels: {role: "backend"}
  annotations: {eks.amazonaws.com/role-arn: "` + role + `"}
---
apiVersion: vpcresources.k8s.aws/v1beta1
kind: SecurityGroupPolicy
metadata:
  name: my-sg-policy
  namespace: default
spec:
  serviceAccountSelector:
    matchLabels:
      role: backend
  securityGroups:
    groupIds:
      - ` + clusterSG + `
      - ` + clientSG + "\n" + podManifest("postgres-test", "rds-db-access", host) + podManifest("postgres-test-no-sa", "", host)
}

// podManifest is the tutorial's pod: postgres_test_iam.py (pgcheck --auth=iam) with the
// database's hostname and its IAM user.
func podManifest(name, sa, host string) string {
	s := "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  namespace: default\nspec:\n  restartPolicy: Never\n"
	if sa != "" {
		s += "  serviceAccountName: " + sa + "\n"
	}
	return s + "  containers:\n  - name: postgres-test\n    image: podsg.local/pgcheck:latest\n    imagePullPolicy: IfNotPresent\n    args: [\"--auth=iam\"]\n    env:\n" +
		"    - name: HOST\n      value: \"" + host + "\"\n    - name: DATABASE\n      value: \"postgres\"\n    - name: USER\n      value: \"" + demoDBUser + "\"\n"
}

// RerunPod creates the tutorial's pod name again (with the ServiceAccount when sa is set)
// after the demo, and returns what it printed: the metabase walk-through's "delete the
// policy, recreate the deployment" check.
func RerunPod(ctx context.Context, o Options, name, sa string) (DemoResult, error) {
	if err := o.absStateDir(); err != nil {
		return DemoResult{}, err
	}
	kubectl := o.kubectl(o.Kubeconfig())
	if _, err := kubectl(ctx, "", "delete", "pod", name, "--ignore-not-found", "--wait=true"); err != nil {
		return DemoResult{}, err
	}
	have, err := RDSClient().DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(demoDB)})
	if err != nil || len(have.DBInstances) == 0 || have.DBInstances[0].Endpoint == nil {
		return DemoResult{}, fmt.Errorf("finding the demo database (run podsg demo first): %w", err)
	}
	if _, err := kubectl(ctx, podManifest(name, sa, aws.ToString(have.DBInstances[0].Endpoint.Address)), "apply", "-f", "-"); err != nil {
		return DemoResult{}, err
	}
	return waitPodLog(ctx, kubectl, name)
}

func waitPodLog(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), pod string) (DemoResult, error) {
	var phase string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 4*time.Minute, true, func(ctx context.Context) (bool, error) {
		out, err := kubectl(ctx, "", "get", "pod", pod, "-o", "jsonpath={.status.phase}")
		if err != nil {
			return false, nil //nolint:nilerr // not created yet
		}
		phase = out
		return phase == "Succeeded" || phase == "Failed", nil
	})
	if err != nil {
		events, _ := kubectl(ctx, "", "get", "events", "--field-selector", "involvedObject.name="+pod)
		return DemoResult{}, fmt.Errorf("pod %s did not finish (phase %q): %w\n%s", pod, phase, err, events)
	}
	return podResult(ctx, kubectl, "default", pod)
}

// podResult reads what a pod printed, where it ran and what podsg gave it.
func podResult(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), ns, pod string) (DemoResult, error) {
	get := func(jsonpath string) (string, error) {
		return kubectl(ctx, "", "-n", ns, "get", "pod", pod, "-o", "jsonpath="+jsonpath)
	}
	node, err := get("{.spec.nodeName}")
	if err != nil {
		return DemoResult{}, err
	}
	log, err := kubectl(ctx, "", "-n", ns, "logs", pod)
	if err != nil {
		return DemoResult{}, err
	}
	groups, err := get(`{.metadata.annotations.podsg\.io/security-groups}`)
	if err != nil {
		return DemoResult{}, err
	}
	eni, err := get(`{.metadata.annotations.vpc\.amazonaws\.com/pod-eni}`)
	if err != nil {
		return DemoResult{}, err
	}
	r := DemoResult{Pod: pod, Node: node, Log: strings.TrimSpace(log), Groups: groups}
	if enis, err := v1beta1.ParsePodENIs(eni); err == nil && len(enis) > 0 {
		r.BranchENI = enis[0].ENIID
	}
	return r, nil
}
