package vpccmd

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestStandaloneIMDS: serve --imds-listen gives a process on the host the metadata of one
// instance, read the way AWS's vpc-resource-controller reads it at start (aws-sdk-go-v2's imds
// client: an IMDSv2 token, then the region and the identity document), and answers as the
// instance is now (404 once it is terminated).
func TestStandaloneIMDS(t *testing.T) {
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	stateDir := t.TempDir()
	server, url := startBinary(t, bin, stateDir)
	c, ctx := vpctest.NewClient(url, "", ""), t.Context()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	subnet, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.4.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: "m5.large",
		SubnetId: subnet.Subnet.SubnetId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	inst := run.Instances[0]
	// The instance id is known only now: serve again, with metadata for it.
	if err := server.Stop(stopGrace); err != nil {
		t.Fatal(err)
	}
	p, err := testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", stateDir,
		"--imds-listen", "127.0.0.1:0", "--imds-instance", *inst.InstanceId)
	if err != nil {
		t.Fatal(err)
	}
	url = testenv.ListeningURL(t, p, "podsg-vpc listening on ")
	line := testenv.ListeningURL(t, p, imdsStartupLine)
	endpoint, forID, _ := strings.Cut(line, " for ")
	if forID != *inst.InstanceId {
		t.Fatalf("metadata announced for %q, want %s", forID, *inst.InstanceId)
	}

	md := imds.New(imds.Options{Endpoint: endpoint})
	region, err := md.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil || region.Region != vpctest.Region {
		t.Fatalf("region: %v, %+v", err, region)
	}
	doc, err := md.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil || doc.AccountID != state.AccountID || doc.InstanceID != *inst.InstanceId || doc.InstanceType != "m5.large" ||
		doc.PrivateIP != *inst.PrivateIpAddress {
		t.Fatalf("identity document: %v, %+v", err, doc)
	}
	mac := get(t, md, "mac")
	if want := *inst.NetworkInterfaces[0].MacAddress; mac != want {
		t.Errorf("mac = %q, want %s", mac, want)
	}
	if got := get(t, md, "network/interfaces/macs/"+mac+"/subnet-ipv4-cidr-block"); got != "10.0.4.0/24" {
		t.Errorf("subnet CIDR = %q", got)
	}
	if got := get(t, md, "network/interfaces/macs/"+mac+"/vpc-ipv4-cidr-blocks"); got != "10.0.0.0/16" {
		t.Errorf("VPC CIDRs = %q", got)
	}

	c = vpctest.NewClient(url, "", "")
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{*inst.InstanceId}}); err != nil {
		t.Fatal(err)
	}
	if _, err := md.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"}); err == nil {
		t.Error("a terminated instance still has metadata")
	}
}

// TestStandaloneIMDSCredentials: the host's metadata hands out the instance profile role's
// credentials, as the metadata inside every instance does, and the local VPC accepts them.
func TestStandaloneIMDSCredentials(t *testing.T) {
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	stateDir := t.TempDir()
	server, url := startBinary(t, bin, stateDir)
	ctx := t.Context()
	ic := iam.New(iam.Options{Region: vpctest.Region, BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")})
	trust := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}`
	if _, err := ic.CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("node"), AssumeRolePolicyDocument: aws.String(trust)}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.CreateInstanceProfile(ctx, &iam.CreateInstanceProfileInput{InstanceProfileName: aws.String("node")}); err != nil {
		t.Fatal(err)
	}
	if _, err := ic.AddRoleToInstanceProfile(ctx, &iam.AddRoleToInstanceProfileInput{InstanceProfileName: aws.String("node"), RoleName: aws.String("node")}); err != nil {
		t.Fatal(err)
	}
	c := vpctest.NewClient(url, "", "")
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	subnet, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.0.4.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-12345678"), InstanceType: "m5.large",
		SubnetId: subnet.Subnet.SubnetId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		IamInstanceProfile: &ec2types.IamInstanceProfileSpecification{Name: aws.String("node")}})
	if err != nil {
		t.Fatal(err)
	}
	id := *run.Instances[0].InstanceId
	if err := server.Stop(stopGrace); err != nil {
		t.Fatal(err)
	}
	p, err := testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", stateDir,
		"--imds-listen", "127.0.0.1:0", "--imds-instance", id)
	if err != nil {
		t.Fatal(err)
	}
	url = testenv.ListeningURL(t, p, "podsg-vpc listening on ")
	endpoint, _, _ := strings.Cut(testenv.ListeningURL(t, p, imdsStartupLine), " for ")

	md := imds.New(imds.Options{Endpoint: endpoint})
	if role := get(t, md, "iam/security-credentials/"); role != "node" {
		t.Fatalf("iam/security-credentials/ = %q, want the profile's role", role)
	}
	// The SDK's own provider, as a process on the host would use it.
	creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = md }).Retrieve(ctx)
	if err != nil {
		t.Fatalf("instance profile credentials: %v", err)
	}
	signed := vpctest.NewClientWithToken(url, creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)
	if _, err := signed.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}}); err != nil {
		t.Errorf("a call signed with the instance's credentials: %v", err)
	}
}

// stopGrace is how long a stopped server gets to shut down.
const stopGrace = 10 * time.Second

func get(t *testing.T, md *imds.Client, path string) string {
	t.Helper()
	out, err := md.GetMetadata(t.Context(), &imds.GetMetadataInput{Path: path})
	if err != nil {
		t.Fatalf("metadata %s: %v", path, err)
	}
	defer func() { _ = out.Content.Close() }()
	b, err := io.ReadAll(out.Content)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestIMDSFlags: the two flags go together, name an instance id and stay on loopback.
func TestIMDSFlags(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string
	}{
		"listen alone":   {[]string{"--imds-listen", "127.0.0.1:0"}, "go together"},
		"instance alone": {[]string{"--imds-instance", "i-0123456789abcdef0"}, "go together"},
		"bad instance":   {[]string{"--imds-listen", "127.0.0.1:0", "--imds-instance", "eni-0123456789abcdef0"}, "--imds-instance"},
		"not loopback":   {[]string{"--imds-listen", "10.1.2.3:80", "--imds-instance", "i-0123456789abcdef0"}, "--imds-listen 10.1.2.3:80 is not a loopback address"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir()}, tc.args...)
			if code := Run(ctx, args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want a failure saying %q", code, errOut.String(), tc.want)
			}
		})
	}
}
