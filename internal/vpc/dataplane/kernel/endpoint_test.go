package kernel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	cnins "github.com/containernetworking/plugins/pkg/ns"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// endpointHelperEnv turns the test binary into the in-instance client of
// TestAPIEndpoint (see TestMain).
const endpointHelperEnv = "PODSG_NETNSDP_ENDPOINT_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(endpointHelperEnv); mode != "" {
		os.Exit(endpointHelper(mode, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// endpointHelper runs inside an instance namespace, as the node agent
// does: it learns its instance id from IMDS, then, through the in-VPC API
// endpoint with the SDK's EC2 client, describes that instance and prints
// "<instance id> <private IP>" per instance returned (mode "describe"), or
// terminates it (mode "terminate"; the termination kills the helper).
func endpointHelper(mode string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if mode == "sts" {
		return stsHelper(ctx, stdout, stderr)
	}
	md, err := imds.New(imds.Options{}).GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if err != nil {
		fmt.Fprintf(stderr, "instance-id: %v\n", err)
		return 1
	}
	b, err := io.ReadAll(md.Content)
	_ = md.Content.Close()
	if err != nil {
		fmt.Fprintf(stderr, "reading instance-id: %v\n", err)
		return 1
	}
	url := "http://" + net.JoinHostPort(IMDSAddr.String(), strconv.Itoa(topo.APIPort))
	client := vpctest.NewClient(url, "", "")
	if mode == "terminate" {
		if _, err := client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{string(b)}}); err != nil {
			fmt.Fprintf(stderr, "TerminateInstances: %v\n", err)
			return 1
		}
		return 0
	}
	out, err := client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{string(b)}})
	if err != nil {
		fmt.Fprintf(stderr, "DescribeInstances: %v\n", err)
		return 1
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			fmt.Fprintln(stdout, aws.ToString(i.InstanceId), aws.ToString(i.PrivateIpAddress))
		}
	}
	return 0
}

// TestAPIEndpoint: a process inside an instance reaches the server's EC2
// API at 169.254.169.254:8450 and finds its own instance there; the
// listener survives a server restart and goes with the instance, also when
// the instance terminates itself through it.
func TestAPIEndpoint(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.77.0.0/16")
	sub := e.subnet(vpc, "10.77.1.0/24")
	sg := e.group(vpc, "a")
	a, ipA := e.instance(sub, sg)
	b, ipB := e.instance(sub, sg)
	e.expectDescribesItself(a, ipA)
	e.expectDescribesItself(b, ipB)

	// A restarted server serves again in the namespaces it finds.
	e.reopen()
	e.expectDescribesItself(a, ipA)

	fa := e.holdNamespace(a)
	if _, err := e.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{a}}); err != nil {
		t.Fatalf("TerminateInstances: %v", err)
	}
	e.expectGone(a, fa)
	// The other instance keeps its endpoint.
	e.expectDescribesItself(b, ipB)

	// b terminates itself: the Apply kills the caller, which cancels the
	// request (the Apply fails), and still closes b's listeners.
	fb := e.holdNamespace(b)
	_ = e.dp.Exec(b, e.helper("terminate", io.Discard, io.Discard)) // killed
	// The helper died inside that Apply, which holds the data path's lock
	// until it is done: Flows waits for it.
	if _, err := e.dp.Flows(); err != nil {
		t.Fatal(err)
	}
	e.expectGone(b, fb)
}

// stsHelper is what an SDK in a pod does: its configuration from the environment
// (AWS_REGION, AWS_ENDPOINT_URL_STS, the credentials), the endpoint's name through the
// namespace's resolv.conf; it prints the caller's ARN.
func stsHelper(ctx context.Context, stdout, stderr io.Writer) int {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryMaxAttempts(1))
	if err != nil {
		fmt.Fprintf(stderr, "config: %v\n", err)
		return 1
	}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		fmt.Fprintf(stderr, "GetCallerIdentity: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, aws.ToString(out.Arn))
	return 0
}

// expectSTSThroughEndpoint runs stsHelper in namespace ns with endpoint as AWS_ENDPOINT_URL_STS
// and resolv.conf naming the VPC's resolver, as a pod given an IAM role has them.
func expectSTSThroughEndpoint(t *testing.T, ns, resolverAddr, endpoint string) {
	t.Helper()
	dir := namespace.ConfigDir(ns)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "resolv.conf")
	if _, err := os.Stat(conf); errors.Is(err, os.ErrNotExist) {
		must(t, os.WriteFile(conf, []byte("nameserver "+resolverAddr+"\n"), 0o644))
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^$")
	cmd.Env = append(os.Environ(), endpointHelperEnv+"=sts", "AWS_REGION="+region, "AWS_ENDPOINT_URL_STS="+endpoint,
		"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Errorf("in %s: STS through %s: %v\n%s", ns, endpoint, err, stderr.Bytes())
		return
	}
	if got, want := strings.TrimSpace(stdout.String()), "arn:aws:iam::"+state.AccountID+":root"; got != want {
		t.Errorf("in %s: GetCallerIdentity through %s = %q, want %q", ns, endpoint, got, want)
	}
}

// holdNamespace keeps the instance's namespace alive, to look into it once
// it is deleted, until the test ends.
func (e *env) holdNamespace(id string) *os.File {
	e.t.Helper()
	f, err := namespace.Open(e.dp.names.Instance(id))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = f.Close() })
	return f
}

// expectGone checks that the instance's namespace is deleted and nothing
// listens on IMDSAddr in it any more (f holds it).
func (e *env) expectGone(id string, f *os.File) {
	e.t.Helper()
	if namespace.Exists(e.dp.names.Instance(id)) {
		e.t.Errorf("namespace of terminated %s still exists", id)
	}
	for _, port := range []int{80, topo.APIPort} {
		if err := dialIn(f, port); !errors.Is(err, syscall.ECONNREFUSED) {
			e.t.Errorf("terminated %s: dial %s:%d = %v, want connection refused", id, IMDSAddr, port, err)
		}
	}
}

// expectDescribesItself runs endpointHelper inside the instance.
func (e *env) expectDescribesItself(id, ip string) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	if err := e.dp.Exec(id, e.helper("describe", &stdout, &stderr)); err != nil {
		e.t.Fatalf("in %s: %v\n%s", id, err, stderr.Bytes())
	}
	if got, want := strings.TrimSpace(stdout.String()), id+" "+ip; got != want {
		e.t.Errorf("in %s: DescribeInstances via the endpoint = %q, want %q", id, got, want)
	}
}

// helper is the command running endpointHelper: this test binary.
func (e *env) helper(mode string, stdout, stderr io.Writer) *exec.Cmd {
	e.t.Helper()
	self, err := os.Executable()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), endpointHelperEnv+"="+mode)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd
}

// dialIn connects to IMDSAddr:port inside the namespace held open by f.
func dialIn(f *os.File, port int) error {
	ns, err := cnins.GetNS(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	return ns.Do(func(cnins.NetNS) error {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(IMDSAddr.String(), strconv.Itoa(port)), 5*time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	})
}
