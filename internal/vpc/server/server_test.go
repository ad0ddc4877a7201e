package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func post(t *testing.T, base string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(base, form)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProtocolErrors(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	tests := map[string]struct {
		form   url.Values
		status int
		code   string
	}{
		"unknown action": {url.Values{"Action": {"LaunchRockets"}, "Version": {"2016-11-15"}}, 400, "<Code>InvalidAction</Code>"},
		"no action":      {url.Values{"Version": {"2016-11-15"}}, 400, "<Code>MissingParameter</Code>"},
		"bad version":    {url.Values{"Action": {"DescribeVpcs"}, "Version": {"2010-01-01"}}, 400, "<Code>NoSuchVersion</Code>"},
		"bad bool":       {url.Values{"Action": {"DescribeVpcs"}, "DryRun": {"maybe"}}, 400, "<Code>InvalidParameterValue</Code>"},
		"ok":             {url.Values{"Action": {"DescribeVpcs"}, "Version": {"2016-11-15"}}, 200, `<DescribeVpcsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, body := post(t, env.URL, tc.form)
			if status != tc.status || !strings.Contains(body, tc.code) {
				t.Errorf("got %d %s, want %d containing %s", status, body, tc.status, tc.code)
			}
			if status != 200 && !strings.Contains(body, "<RequestID>") {
				t.Errorf("error envelope without RequestID: %s", body)
			}
		})
	}
	// GET with the query string works too.
	resp, err := http.Get(env.URL + "/?Action=DescribeVpcs&Version=2016-11-15")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	resp, err = http.Get(env.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	_ = resp.Body.Close()
}

func TestPanicBecomesInternalError(t *testing.T) {
	r := query.NewRouter()
	r.Handle("Boom", func(context.Context, *query.Request) (query.Response, error) { panic("kaboom") })
	r.Handle("Fine", func(context.Context, *query.Request) (query.Response, error) {
		return &query.ReturnResponse{Return: true}, nil
	})
	srv, err := server.New(server.Options{Router: r, Registry: prometheus.NewRegistry(), Log: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	status, body := post(t, hs.URL, url.Values{"Action": {"Boom"}})
	if status != 500 || !strings.Contains(body, "<Code>InternalError</Code>") || !strings.Contains(body, "<RequestID>") {
		t.Fatalf("panic answered %d %s", status, body)
	}
	status, body = post(t, hs.URL, url.Values{"Action": {"Fine"}})
	if status != 200 || !strings.Contains(body, "<return>true</return>") {
		t.Fatalf("server did not survive the panic: %d %s", status, body)
	}
}

func TestSigV4(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{Credentials: server.Credentials{"AKIDLOCAL": "s3cr3t"}, AccessKey: "AKIDLOCAL", SecretKey: "s3cr3t"})
	if _, err := env.Client.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{}); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	_, err := vpctest.NewClient(env.URL, "AKIDLOCAL", "wrong").DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	vpctest.ExpectCode(t, err, "SignatureDoesNotMatch")
	_, err = vpctest.NewClient(env.URL, "AKIDOTHER", "s3cr3t").DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	vpctest.ExpectCode(t, err, "AuthFailure")
	status, body := post(t, env.URL, url.Values{"Action": {"DescribeVpcs"}})
	if status != 401 || !strings.Contains(body, "AuthFailure") {
		t.Errorf("unsigned request: %d %s", status, body)
	}
	// A signature from too far in the past.
	env.Clock.Step(time.Hour)
	_, err = env.Client.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{})
	vpctest.ExpectCode(t, err, "RequestExpired")
}

func TestThrottlingAWSProfile(t *testing.T) {
	p, err := server.LoadProfile("aws")
	if err != nil {
		t.Fatal(err)
	}
	env := vpctest.Start(t, vpctest.Options{Profile: p})
	c, ctx := env.Client, t.Context()
	// Filtered describes use the non-mutating bucket: 100, then 20/s.
	describe := func() error {
		_, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{"vpc-*"}}}})
		return err
	}
	for i := range 100 {
		if err := describe(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	vpctest.ExpectCode(t, describe(), "RequestLimitExceeded")
	// Mutating calls have their own bucket.
	if _, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}); err != nil {
		t.Fatalf("mutating call throttled by the describe bucket: %v", err)
	}
	env.Clock.Step(time.Second)
	for i := range 20 {
		if err := describe(); err != nil {
			t.Fatalf("refilled call %d: %v", i, err)
		}
	}
	vpctest.ExpectCode(t, describe(), "RequestLimitExceeded")
	n := requests(t, env.Registry, "DescribeVpcs", "RequestLimitExceeded")
	if n != 2 {
		t.Errorf("throttled describes counted %v, want 2", n)
	}
}

// requests reads podsg_vpc_requests_total{action,code} from a registry.
func requests(t *testing.T, reg *prometheus.Registry, action, code string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "podsg_vpc_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["action"] == action && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestFaultInjection(t *testing.T) {
	profile, err := server.ParseProfile([]byte(`
faults:
  seed: 7
  rules:
  - action: CreateVpc
    nth: 2
    code: InternalError
  - action: DescribeSubnets
    probability: 0.5
    code: Unavailable
    after: 10s
    for: 10s
`))
	if err != nil {
		t.Fatal(err)
	}
	env := vpctest.Start(t, vpctest.Options{Profile: profile})
	c, ctx := env.Client, t.Context()
	create := func() error {
		_, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")})
		return err
	}
	if err := create(); err != nil {
		t.Fatal(err)
	}
	vpctest.ExpectCode(t, create(), "InternalError")
	if err := create(); err != nil {
		t.Fatalf("third call should pass: %v", err)
	}
	storm := func() []bool {
		var failed []bool
		for range 40 {
			_, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
			failed = append(failed, vpctest.Code(err) == "Unavailable")
		}
		return failed
	}
	if got := storm(); countTrue(got) != 0 {
		t.Fatalf("faults before the window: %v", got)
	}
	env.Clock.Step(10 * time.Second)
	inWindow := storm()
	if n := countTrue(inWindow); n < 5 || n > 35 {
		t.Errorf("%d/40 failures at probability 0.5", n)
	}
	env.Clock.Step(10 * time.Second)
	if got := storm(); countTrue(got) != 0 {
		t.Fatalf("faults after the window: %v", got)
	}
	// The same seed gives the same storm.
	env2 := vpctest.Start(t, vpctest.Options{Profile: profile})
	env2.Clock.Step(10 * time.Second)
	c = env2.Client
	if again := storm(); !equal(again, inWindow) {
		t.Errorf("seeded storm differs:\n%v\n%v", inWindow, again)
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

func equal(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLatencyMetricsAndRequestLog(t *testing.T) {
	var mu sync.Mutex
	var slept []time.Duration
	sleep := func(_ context.Context, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
	}
	profile, err := server.ParseProfile([]byte(`{"latency": {"default": "5ms", "actions": {"CreateVpc": "250ms"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	env := vpctest.Start(t, vpctest.Options{Profile: profile, Sleep: sleep, RequestLog: &log})
	if _, err := env.Client.CreateVpc(t.Context(), &ec2.CreateVpcInput{CidrBlock: aws.String("10.0.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	_, _ = env.Client.DescribeVpcs(t.Context(), &ec2.DescribeVpcsInput{VpcIds: []string{"vpc-0123456789abcdef0"}})
	if len(slept) != 2 || slept[0] != 250*time.Millisecond || slept[1] != 5*time.Millisecond {
		t.Errorf("latencies %v, want [250ms 5ms]", slept)
	}
	if n := requests(t, env.Registry, "CreateVpc", "Success"); n != 1 {
		t.Errorf("CreateVpc Success = %v", n)
	}
	if n := requests(t, env.Registry, "DescribeVpcs", "InvalidVpcID.NotFound"); n != 1 {
		t.Errorf("DescribeVpcs NotFound = %v", n)
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("request log has %d lines", len(lines))
	}
	var entry struct {
		RequestID, Action, Code, UserAgent string
		Status                             int
	}
	if err := json.Unmarshal([]byte(lines[1]), &entry); err != nil {
		t.Fatal(err)
	}
	if entry.Action != "DescribeVpcs" || entry.Code != "InvalidVpcID.NotFound" || entry.Status != 400 || entry.RequestID == "" ||
		!strings.Contains(entry.UserAgent, "aws-sdk-go-v2") {
		t.Errorf("log entry %+v", entry)
	}
	resp, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !strings.Contains(string(b), `podsg_vpc_request_duration_seconds_count{action="CreateVpc"} 1`) {
		t.Errorf("/metrics lacks the latency histogram:\n%s", b)
	}
}

func TestProfileValidation(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": `{"latncy": {}}`,
		"bad duration":  `{"latency": {"default": "soon"}}`,
		"nth and prob":  `{"faults": {"rules": [{"action": "X", "code": "Y", "nth": 1, "probability": 0.5}]}}`,
		"no code":       `{"faults": {"rules": [{"action": "X", "nth": 1}]}}`,
		"empty bucket":  `{"throttle": {"mutating": {"capacity": 0, "refillPerSecond": 1}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := server.ParseProfile([]byte(doc)); err == nil {
				t.Errorf("profile %s accepted", doc)
			}
		})
	}
}
