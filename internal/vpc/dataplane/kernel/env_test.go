package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/ec2api"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/sts"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// env is a local VPC with the netns data path, persisted so it can be
// restarted mid-test.
type env struct {
	t      testing.TB
	id     string
	path   string
	limits state.Limits
	dp     *Dataplane
	store  *state.Store
	hs     *httptest.Server
	ec2    *ec2.Client
}

func newEnv(t testing.TB, limits state.Limits) *env {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.IPRoute2, testenv.Ping)
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	e := &env{t: t, id: "t" + hex.EncodeToString(b)[:5], path: filepath.Join(t.TempDir(), "state.db"), limits: limits}
	t.Cleanup(func() {
		e.close()
		if err := Cleanup(e.id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		e.expectNothingLeft()
	})
	e.open()
	return e
}

func (e *env) open() {
	e.t.Helper()
	dp, err := New(Options{ID: e.id, Region: region, IMDS: true, Log: logr.Discard()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.dp = dp
	store, err := state.Open(context.Background(), state.Options{Path: e.path, Region: region, Applier: loggingApplier{e.t, dp}, Limits: e.limits})
	if err != nil {
		e.t.Fatalf("opening state: %v", err)
	}
	e.store = store
	router := query.NewRouter()
	ec2api.New(store).Register(router)
	tokens, err := sts.New(context.Background(), sts.Options{Store: store})
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := server.New(server.Options{Router: router, Services: []*query.Service{tokens.Service()}, Sessions: tokens,
		Registry: prometheus.NewRegistry(), Log: logr.Discard()})
	if err != nil {
		e.t.Fatal(err)
	}
	e.hs = httptest.NewServer(srv)
	e.ec2 = newClient(e.hs.URL)
	// As podsg-vpc serve does: the same handler inside every instance.
	if err := dp.SetAPIHandler(srv); err != nil {
		e.t.Fatalf("SetAPIHandler: %v", err)
	}
}

func (e *env) close() {
	if e.hs != nil {
		e.hs.Close()
		e.hs = nil
	}
	if e.dp != nil {
		if err := e.dp.SetAPIHandler(nil); err != nil {
			e.t.Errorf("SetAPIHandler(nil): %v", err)
		}
	}
	if e.store != nil {
		_ = e.store.Close()
		e.store = nil
	}
	if e.dp != nil {
		_ = e.dp.Close()
		e.dp = nil
	}
}

// reopen restarts the server: new store, new data path, same kernel.
func (e *env) reopen() {
	e.t.Helper()
	e.close()
	e.open()
}

func (e *env) expectNothingLeft() {
	e.t.Helper()
	names := topo.Names{ID: e.id}
	if left, _ := namespace.List(names.Prefix()); len(left) > 0 {
		e.t.Errorf("namespaces left: %v", left)
	}
	if left, _ := filepath.Glob(namespace.ConfigDir(names.Prefix()) + "*"); len(left) > 0 {
		e.t.Errorf("namespace configurations left: %v", left)
	}
	out, _ := exec.Command("ip", "-o", "link").CombinedOutput()
	if strings.Contains(string(out), names.RootLinkPrefix()) {
		e.t.Errorf("root links left:\n%s", out)
	}
	out, _ = exec.Command("ip", "route", "show", "proto", "250").CombinedOutput()
	if strings.Contains(string(out), " metric "+strconv.Itoa(names.RouteMetric())) {
		e.t.Errorf("root routes left:\n%s", out)
	}
}

func (e *env) vpc(cidr string) string {
	e.t.Helper()
	out, err := e.ec2.CreateVpc(context.Background(), &ec2.CreateVpcInput{CidrBlock: aws.String(cidr)})
	if err != nil {
		e.t.Fatalf("CreateVpc: %v", err)
	}
	return *out.Vpc.VpcId
}

func (e *env) subnet(vpc, cidr string) string {
	e.t.Helper()
	out, err := e.ec2.CreateSubnet(context.Background(), &ec2.CreateSubnetInput{VpcId: aws.String(vpc), CidrBlock: aws.String(cidr)})
	if err != nil {
		e.t.Fatalf("CreateSubnet: %v", err)
	}
	return *out.Subnet.SubnetId
}

func (e *env) group(vpc, name string) string {
	e.t.Helper()
	out, err := e.ec2.CreateSecurityGroup(context.Background(), &ec2.CreateSecurityGroupInput{
		VpcId: aws.String(vpc), GroupName: aws.String(name), Description: aws.String(name),
	})
	if err != nil {
		e.t.Fatalf("CreateSecurityGroup: %v", err)
	}
	return *out.GroupId
}

// instance launches one instance and returns its id and primary IP.
func (e *env) instance(subnet string, groups ...string) (string, string) {
	e.t.Helper()
	out, err := e.ec2.RunInstances(context.Background(), &ec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Large, SubnetId: aws.String(subnet),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SecurityGroupIds: groups,
	})
	if err != nil {
		e.t.Fatalf("RunInstances: %v", err)
	}
	i := out.Instances[0]
	return *i.InstanceId, *i.PrivateIpAddress
}

func (e *env) eni(subnet string, typ types.NetworkInterfaceCreationType, tags map[string]string, groups ...string) types.NetworkInterface {
	e.t.Helper()
	in := &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), InterfaceType: typ, Groups: groups}
	if len(tags) > 0 {
		ts := types.TagSpecification{ResourceType: types.ResourceTypeNetworkInterface}
		for k, v := range tags {
			ts.Tags = append(ts.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		in.TagSpecifications = []types.TagSpecification{ts}
	}
	out, err := e.ec2.CreateNetworkInterface(context.Background(), in)
	if err != nil {
		e.t.Fatalf("CreateNetworkInterface: %v", err)
	}
	return *out.NetworkInterface
}

// ingress authorizes one rule; peer is a CIDR or a group id.
func (e *env) ingress(group, proto string, from, to int32, peer string) {
	e.t.Helper()
	vpctest.Ingress(e.t, e.ec2, group, proto, from, to, peer)
}

func (e *env) egress(group, proto string, from, to int32, peer string) {
	e.t.Helper()
	vpctest.Egress(e.t, e.ec2, group, proto, from, to, peer)
}

const region = "us-west-2"

// newClient is an EC2 client for the test server, retries off.
func newClient(url string) *ec2.Client {
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
	})
	return ec2.New(ec2.Options{Region: region, Credentials: creds, BaseEndpoint: aws.String(url), Retryer: aws.NopRetryer{}})
}

// loggingApplier reports Apply errors, which the API turns into a bare
// InternalError.
type loggingApplier struct {
	t  testing.TB
	dp *Dataplane
}

func (l loggingApplier) Apply(ctx context.Context, snap *state.Snapshot) error {
	err := l.dp.Apply(ctx, snap)
	if err != nil {
		l.t.Logf("apply: %v", err)
	}
	return err
}
