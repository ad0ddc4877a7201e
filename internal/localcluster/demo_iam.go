package localcluster

import (
	"context"
	"crypto/sha1" //nolint:gosec // IAM's OIDC thumbprint is SHA-1 by definition
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/jackc/pgx/v5"

	"github.com/podsg/podsg/internal/vpc/state"
)

// The seed tutorial's identity layer (IAM roles for service accounts): the role its
// `eksctl create iamserviceaccount` makes, and the database account that uses IAM
// authentication.
const (
	demoRole   = "rds-db-access"
	demoDBUser = "rds_db_user"
	// The node group's instance role, as eksctl gives every node: it may not connect to the
	// database, but the SDK of a pod without a role of its own finds it in instance metadata,
	// as postgres_test_iam.py's boto3 did in the tutorial's postgres-test-no-sa.
	demoNodeRole = "podsg-demo-node-role"
)

// roleARN is an IAM role's ARN in the local account.
func roleARN(name string) string { return "arn:aws:iam::" + state.AccountID + ":role/" + name }

// IAMClient is an SDK client for the local VPC's IAM API on loopback.
func IAMClient() *iam.Client {
	return iam.New(iam.Options{Region: Region, BaseEndpoint: aws.String(APIURL()),
		Credentials: credentials.NewStaticCredentialsProvider("podsg", "podsg", "")})
}

// ensureOIDCProvider registers the cluster's service-account issuer with IAM, as eksctl's
// `iam: withOIDC: true` does, after publishing it (PublishServiceAccountIssuer). It returns
// the provider's ARN and the issuer's host (the prefix of the trust policy's condition keys).
func (o *Options) ensureOIDCProvider(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), hostIP string) (arn, issuerHost string, err error) {
	cp, err := o.controlPlane(hostIP)
	if err != nil {
		return "", "", err
	}
	ca, err := os.ReadFile(cp.CAFile())
	if err != nil {
		return "", "", fmt.Errorf("reading the cluster CA: %w", err)
	}
	iss, err := PublishServiceAccountIssuer(ctx, kubectl, ca)
	if err != nil {
		return "", "", err
	}
	arn = "arn:aws:iam::" + state.AccountID + ":oidc-provider/" + iss.Host
	_, err = IAMClient().CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
		Url: aws.String(iss.URL), ClientIDList: []string{"sts.amazonaws.com"}, ThumbprintList: []string{iss.Thumbprint}})
	if isCode(err, "EntityAlreadyExists") {
		// A provider an earlier run registered: its thumbprint may be of another certificate
		// (a cluster brought up again, an older demo), and STS would refuse every token.
		_, err = IAMClient().UpdateOpenIDConnectProviderThumbprint(ctx, &iam.UpdateOpenIDConnectProviderThumbprintInput{
			OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: []string{iss.Thumbprint}})
	}
	if err != nil {
		return "", "", fmt.Errorf("registering the OIDC provider for %s: %w", iss.URL, err)
	}
	return arn, iss.Host, nil
}

// Issuer is a cluster's service-account issuer as IAM's OIDC provider needs it.
type Issuer struct {
	// URL is the issuer, as in the tokens' iss claim (https://…).
	URL string
	// Host is URL without its scheme and trailing slash: IAM's name of the provider, the
	// prefix of its condition keys (HOST:sub, HOST:aud).
	Host string
	// Thumbprint is the hex SHA-1 of the certificate CreateOpenIDConnectProvider wants.
	Thumbprint string
}

// PublishServiceAccountIssuer lets anyone read the cluster's service-account issuer discovery
// document and keys, which an OIDC client outside the cluster (the local STS) fetches to
// verify its tokens: on EKS the issuer's are public. It binds
// system:service-account-issuer-discovery to system:unauthenticated (the apiserver, which is
// its own issuer, serves both under the same authorization as everything else), reads the
// issuer from the discovery document, and takes its thumbprint over TLS verified with caPEM.
// kubectl runs kubectl with stdin as a cluster admin. Used by `podsg demo` and by the tests
// that exchange a real apiserver's tokens at the local STS.
func PublishServiceAccountIssuer(ctx context.Context, kubectl func(context.Context, string, ...string) (string, error), caPEM []byte) (Issuer, error) {
	if _, err := kubectl(ctx, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "podsg:service-account-issuer-discovery"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:service-account-issuer-discovery"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: "system:unauthenticated"}
`, "apply", "-f", "-"); err != nil {
		return Issuer{}, fmt.Errorf("publishing the service-account issuer: %w", err)
	}
	raw, err := kubectl(ctx, "", "get", "--raw", "/.well-known/openid-configuration")
	if err != nil {
		return Issuer{}, err
	}
	var disc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal([]byte(raw), &disc); err != nil || !strings.HasPrefix(disc.Issuer, "https://") {
		return Issuer{}, fmt.Errorf("reading the service-account issuer from %q: %w", raw, err)
	}
	thumbprint, err := issuerThumbprint(ctx, disc.Issuer, caPEM)
	if err != nil {
		return Issuer{}, err
	}
	// An issuer may end in a slash (envtest's does); IAM names the provider without it.
	return Issuer{URL: disc.Issuer, Host: strings.TrimSuffix(strings.TrimPrefix(disc.Issuer, "https://"), "/"), Thumbprint: thumbprint}, nil
}

// issuerThumbprint is the thumbprint IAM wants for an issuer, obtained as AWS documents it
// (openssl s_client -showcerts, the last certificate shown): the SHA-1 of the DER of the last
// certificate the issuer presents, hex. The connection is verified against the cluster CA
// first. The kube-apiserver presents its serving certificate alone, so that is the one, and
// the local STS finds it in the chain it is shown.
func issuerThumbprint(ctx context.Context, issuer string, caPEM []byte) (string, error) {
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return "", errors.New("the cluster CA holds no PEM certificate")
	}
	u, err := url.Parse(issuer)
	if err != nil {
		return "", fmt.Errorf("parsing the issuer %q: %w", issuer, err)
	}
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: u.Hostname()}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return "", fmt.Errorf("reading the certificate of %s: %w", issuer, err)
	}
	defer func() { _ = conn.Close() }()
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return "", fmt.Errorf("reading the certificate of %s: not a TLS connection", issuer)
	}
	certs := tc.ConnectionState().PeerCertificates
	sum := sha1.Sum(certs[len(certs)-1].Raw) //nolint:gosec // see the import
	return hex.EncodeToString(sum[:]), nil
}

// ensureRole creates (or updates) a role with a trust policy and one inline policy.
func ensureRole(ctx context.Context, c *iam.Client, name, trust, policy string) error {
	_, err := c.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String(name), AssumeRolePolicyDocument: aws.String(trust)})
	if isCode(err, "EntityAlreadyExists") {
		_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(trust)})
	}
	if err != nil {
		return fmt.Errorf("creating role %s: %w", name, err)
	}
	if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(name),
		PolicyDocument: aws.String(policy)}); err != nil {
		return fmt.Errorf("putting the policy of role %s: %w", name, err)
	}
	return nil
}

// ensureServiceAccountRole is `eksctl create iamserviceaccount`'s role: trusted by the
// cluster's OIDC provider for ServiceAccount namespace/sa only, allowed rds-db:connect as
// dbUser to the database resourceID.
func ensureServiceAccountRole(ctx context.Context, name, providerARN, issuerHost, namespace, sa, resourceID, dbUser string) (string, error) {
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"` + providerARN + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + issuerHost + `:sub":"system:serviceaccount:` + namespace + `:` + sa + `",` +
		`"` + issuerHost + `:aud":"sts.amazonaws.com"}}}]}`
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect",` +
		`"Resource":"arn:aws:rds-db:` + Region + `:` + state.AccountID + `:dbuser:` + resourceID + `/` + dbUser + `"}]}`
	if err := ensureRole(ctx, IAMClient(), name, trust, policy); err != nil {
		return "", err
	}
	return roleARN(name), nil
}

// ensureNodeRole gives the nodes' instances an instance profile whose role may describe EC2
// and nothing of RDS, and a metadata hop limit of 2 so that pods reach it (EKS's node groups
// of the tutorial's time did; seed 003 recommends 1, which keeps pods from the node's role).
func ensureNodeRole(ctx context.Context, instanceIDs []string) error {
	c := IAMClient()
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:Describe*","Resource":"*"}]}`
	if err := ensureRole(ctx, c, demoNodeRole, trust, policy); err != nil {
		return err
	}
	if _, err := c.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String(demoNodeRole)}); err != nil && !isCode(err, "EntityAlreadyExists") {
		return fmt.Errorf("creating instance profile %s: %w", demoNodeRole, err)
	}
	if _, err := c.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String(demoNodeRole),
		RoleName: aws.String(demoNodeRole)}); err != nil && !isCode(err, "LimitExceeded") {
		return fmt.Errorf("adding role %s to its instance profile: %w", demoNodeRole, err)
	}
	ec := EC2Client()
	for _, id := range instanceIDs {
		_, err := ec.AssociateIamInstanceProfile(ctx, &ec2.AssociateIamInstanceProfileInput{InstanceId: aws.String(id),
			IamInstanceProfile: &types.IamInstanceProfileSpecification{Name: aws.String(demoNodeRole)}})
		if err != nil && !isCode(err, "IncorrectState") {
			return fmt.Errorf("associating the node role with %s: %w", id, err)
		}
		if _, err := ec.ModifyInstanceMetadataOptions(ctx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id),
			HttpPutResponseHopLimit: aws.Int32(2)}); err != nil {
			return fmt.Errorf("setting the metadata hop limit of %s: %w", id, err)
		}
	}
	return nil
}

// lookupInVPC resolves host with the VPC's resolver, which the root namespace reaches through
// the host ENI.
func lookupInVPC(ctx context.Context, host string) (string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(vpcResolver(), "53"))
	}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := r.LookupHost(ctx, host)
	if err != nil || len(addrs) == 0 {
		return "", fmt.Errorf("resolving %s with the VPC resolver: %w", host, err)
	}
	return addrs[0], nil
}

// ensureIAMDBUser creates the database accounts that log in with IAM tokens (GRANT rds_iam),
// as the tutorials' administrator does. The administrator connects as the master user from
// the host's ENI, which the database's group admits for that moment only.
func ensureIAMDBUser(ctx context.Context, dbSG, hostIP, host string, users ...string) (err error) {
	ec := EC2Client()
	perm := []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(5432), ToPort: aws.Int32(5432),
		IpRanges: []types.IpRange{{CidrIp: aws.String(hostIP + "/32"), Description: aws.String("podsg demo: the administrator creating the IAM user")}}}}
	if _, err := ec.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &dbSG, IpPermissions: perm}); err != nil &&
		!isCode(err, "InvalidPermission.Duplicate") {
		return fmt.Errorf("admitting the administrator: %w", err)
	}
	defer func() {
		if _, rerr := ec.RevokeSecurityGroupIngress(context.WithoutCancel(ctx), &ec2.RevokeSecurityGroupIngressInput{GroupId: &dbSG, IpPermissions: perm}); rerr != nil {
			err = errors.Join(err, fmt.Errorf("revoking the administrator's access: %w", rerr))
		}
	}()
	addr, err := lookupInVPC(ctx, host)
	if err != nil {
		return err
	}
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return err
	}
	cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = addr, 5432, "postgres", "postgres", demoPassword
	cfg.Fallbacks, cfg.TLSConfig, cfg.ConnectTimeout = nil, nil, 10*time.Second
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connecting to %s as the master user: %w", host, err)
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	for _, user := range users {
		// user is a constant of ours: no quoting needed beyond the identifier's.
		sql := `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '` + user + `') THEN CREATE USER ` + user + `; END IF; END $$;` +
			`GRANT rds_iam TO ` + user + `;`
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("creating database user %s: %w", user, err)
		}
	}
	return nil
}

// demoIdentity is the identity layer the tutorials share: the database user granted rds_iam,
// the cluster's OIDC provider and the nodes' instance role (each tutorial adds its
// ServiceAccount's role).
func (o *Options) demoIdentity(ctx context.Context, env *demoEnv) error {
	if err := ensureIAMDBUser(ctx, env.dbSG, env.net.HostIP, env.host, demoDBUser, metabaseUser); err != nil {
		return err
	}
	env.step("database users %s and %s granted rds_iam: they log in with IAM auth tokens only", demoDBUser, metabaseUser)
	var err error
	if env.provider, env.issuerHost, err = o.ensureOIDCProvider(ctx, env.kubectl, env.net.HostIP); err != nil {
		return err
	}
	env.step("OIDC provider %s (the cluster's service-account issuer)", env.provider)
	nodes, err := o.nodes()
	if err != nil {
		return err
	}
	var instances []string
	for _, n := range nodes {
		instances = append(instances, n.InstanceID)
	}
	if err := ensureNodeRole(ctx, instances); err != nil {
		return err
	}
	env.step("node instance role %s (no rds-db:connect), metadata hop limit 2", roleARN(demoNodeRole))
	return nil
}
