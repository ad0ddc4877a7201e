package vpctest

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	clocktesting "k8s.io/utils/clock/testing"

	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/vpc/ec2api"
	"github.com/podsg/podsg/internal/vpc/iamapi"
	"github.com/podsg/podsg/internal/vpc/idgen"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/rdsapi"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/sts"
)

// Region is the region test environments serve.
const Region = "us-west-2"

// Options tune an Env; the zero value is a plain, in-memory VPC.
type Options struct {
	// Persist stores state in a bbolt file in t.TempDir().
	Persist     bool
	Profile     server.Profile
	Credentials server.Credentials
	Limits      state.Limits
	Applier     state.Applier
	// AccessKey/SecretKey sign the client's requests (default "test"/"test").
	AccessKey, SecretKey string
	// Seed makes ids deterministic (default 1).
	Seed uint64
	// Sleep replaces the server's latency sleep.
	Sleep func(ctx context.Context, d time.Duration)
	// RequestLog receives the server's JSON request log.
	RequestLog io.Writer
	// DBs, when set, serves the RDS API around it (a fake: real instances need root).
	DBs rdsapi.DBs
}

// Env is a running local VPC.
type Env struct {
	Client   *ec2.Client
	URL      string
	Store    *state.Store
	Registry *prometheus.Registry
	Clock    *clocktesting.FakeClock
	// STS is the local STS behind the endpoint (credentials, Authorize).
	STS *sts.STS
}

// Start runs a local VPC for the test and stops it at cleanup.
func Start(t testing.TB, o Options) *Env {
	t.Helper()
	if o.Seed == 0 {
		o.Seed = 1
	}
	ids := idgen.NewSeeded(o.Seed)
	clk := clocktesting.NewFakeClock(time.Now().UTC().Truncate(time.Second))
	path := ""
	if o.Persist {
		path = filepath.Join(t.TempDir(), "state.db")
	}
	store, err := state.Open(context.Background(), state.Options{
		Path: path, Region: Region, Clock: clk, IDs: ids, Limits: o.Limits, Applier: o.Applier,
	})
	if err != nil {
		t.Fatalf("opening state: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	router := query.NewRouter()
	ec2api.New(store).Register(router)
	reg := prometheus.NewRegistry()
	tokens, err := sts.New(context.Background(), sts.Options{Store: store, Now: clk.Now, IDs: ids})
	if err != nil {
		t.Fatalf("starting STS: %v", err)
	}
	services := []*query.Service{iamapi.Service(store), tokens.Service()}
	if o.DBs != nil {
		services = append(services, rdsapi.Service(store, o.DBs))
	}
	srv, err := server.New(server.Options{
		Router: router, Services: services, Sessions: tokens, Registry: reg, Clock: clk, IDs: ids, Credentials: o.Credentials,
		Profile: o.Profile, Sleep: o.Sleep, RequestLog: o.RequestLog, Log: logr.Discard(),
	})
	if err != nil {
		t.Fatalf("building server: %v", err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &Env{Client: NewClient(hs.URL, o.AccessKey, o.SecretKey), URL: hs.URL, Store: store, Registry: reg, Clock: clk, STS: tokens}
}

// NewClient returns an EC2 client for a local VPC at url; retries are off
// so tests see every error.
func NewClient(url, accessKey, secretKey string) *ec2.Client {
	return NewClientWithToken(url, accessKey, secretKey, "")
}

// NewClientWithToken is NewClient with temporary credentials (a session token).
func NewClientWithToken(url, accessKey, secretKey, sessionToken string) *ec2.Client {
	if accessKey == "" {
		accessKey, secretKey = "test", "test"
	}
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, SessionToken: sessionToken}, nil
	})
	return ec2.New(ec2.Options{
		Region:       Region,
		Credentials:  creds,
		BaseEndpoint: aws.String(url),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   &http.Client{Transport: cloudec2.BufferedBodies(http.DefaultTransport.(*http.Transport).Clone())},
	})
}

// IAM returns an IAM client for this VPC, signing with the env's default
// keys; retries are off so tests see every error.
func (e *Env) IAM() *iam.Client {
	return iam.New(iam.Options{Region: Region, Credentials: staticCreds("test", "test", ""),
		BaseEndpoint: aws.String(e.URL), Retryer: aws.NopRetryer{}})
}

func staticCreds(ak, sk, token string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(ak, sk, token)
}

// STSClient returns an STS client for this VPC signing with the given
// credentials (empty: the env's default keys).
func (e *Env) STSClient(ak, sk, token string) *awssts.Client {
	if ak == "" {
		ak, sk = "test", "test"
	}
	return awssts.New(awssts.Options{Region: Region, Credentials: staticCreds(ak, sk, token),
		BaseEndpoint: aws.String(e.URL), Retryer: aws.NopRetryer{}})
}

// Code returns the EC2 error code of err ("" for nil or non-API errors).
func Code(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

// ExpectCode fails the test unless err carries the EC2 error code.
func ExpectCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := Code(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// CloudClient is podsg's own EC2 client (internal/cloud/ec2) on this VPC: one attempt per
// call, so tests see every error, and client-side limits wide enough never to slow a test.
// tune, when not nil, adjusts the options (e.g. a small PageSize) before the client is built.
func (e *Env) CloudClient(t testing.TB, tune func(*cloudec2.Options)) *cloudec2.Client {
	t.Helper()
	o := cloudec2.Options{Region: Region, Endpoint: e.URL, MaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		MutatingQPS: 1000, MutatingBurst: 1000, DescribeQPS: 1000, DescribeBurst: 1000}
	if tune != nil {
		tune(&o)
	}
	c, err := cloudec2.New(context.Background(), o)
	if err != nil {
		t.Fatalf("building the EC2 client: %v", err)
	}
	return c
}
