package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/budget"
)

// Options configure a Client.
type Options struct {
	// Region, e.g. us-west-2.
	Region string
	// Endpoint overrides the EC2 endpoint, e.g. http://127.0.0.1:4566 for the local VPC.
	// Empty means AWS's regional endpoint.
	Endpoint string
	// Credentials override the SDK's default chain. With an Endpoint and no credentials found
	// by the chain, static placeholder credentials are used: the local VPC accepts any.
	Credentials aws.CredentialsProvider
	// MutatingQPS/MutatingBurst and DescribeQPS/DescribeBurst size the client-side budgets
	// (internal/cloud/budget) in front of EC2's own token buckets, so that a burst of pods
	// slows us down before EC2 throttles the whole account. Each is shared by every call of
	// the client, served by the purpose its context carries (cloud.WithPurpose), and slowed
	// down when EC2 throttles anyway. Zero means the defaults (5/10 mutating, 20/100
	// describe), well under EC2's.
	MutatingQPS, DescribeQPS     float64
	MutatingBurst, DescribeBurst int
	// MaxAttempts is the SDK's per-call retry budget for transient errors (default 3). Callers
	// still see throttling and 5xx errors that outlast it, classified, and back off themselves.
	MaxAttempts int
	// Registerer receives podsg_ec2_requests_total and podsg_ec2_request_duration_seconds; nil
	// means no metrics.
	Registerer prometheus.Registerer
	// HTTPClient overrides the SDK's HTTP client (tests).
	HTTPClient *http.Client
	// PageSize is MaxResults for paginated describes (default 1000, EC2's maximum).
	PageSize int
	// NoInstanceMetadata keeps the SDK's default credential chain from asking instance
	// metadata (169.254.169.254): for a client outside any instance, such as the CLI on a
	// workstation talking to the local VPC, where that address is not the local VPC's but
	// the host's network's (a real cloud's metadata service, or nothing at all).
	NoInstanceMetadata bool
}

// Client makes podsg's EC2 calls. Safe for concurrent use.
type Client struct {
	api      *ec2.Client
	mutating *budget.Bucket
	describe *budget.Bucket
	metrics  *metrics
	pageSize int32
}

// New returns a Client for opts.
func New(ctx context.Context, opts Options) (*Client, error) {
	if opts.Region == "" {
		return nil, fmt.Errorf("creating the EC2 client: region is required")
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithRegion(opts.Region)}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(opts.Credentials))
	}
	if opts.NoInstanceMetadata {
		loadOpts = append(loadOpts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if opts.Endpoint != "" && !hasCredentials(ctx, cfg) {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("podsg", "podsg", "")
	}
	maxAttempts := opts.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = 3
	}
	api := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
		o.RetryMaxAttempts = maxAttempts
		hc := opts.HTTPClient
		if hc == nil {
			hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		}
		rt := hc.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		o.HTTPClient = &http.Client{Transport: BufferedBodies(rt), Timeout: hc.Timeout}
	})
	mutating, err := budget.New(clock.RealClock{}, orDefault(opts.MutatingQPS, 5), orDefaultInt(opts.MutatingBurst, 10))
	if err != nil {
		return nil, fmt.Errorf("the mutating EC2 budget: %w", err)
	}
	describe, err := budget.New(clock.RealClock{}, orDefault(opts.DescribeQPS, 20), orDefaultInt(opts.DescribeBurst, 100))
	if err != nil {
		return nil, fmt.Errorf("the describe EC2 budget: %w", err)
	}
	m, err := newMetrics(opts.Registerer, map[string]*budget.Bucket{"mutating": mutating, "describe": describe})
	if err != nil {
		return nil, err
	}
	return &Client{
		api:      api,
		mutating: mutating,
		describe: describe,
		metrics:  m,
		pageSize: int32(orDefaultInt(opts.PageSize, 1000)), //nolint:gosec // small by construction
	}, nil
}

// Spare reports whether a mutating call of purpose p would run now, without waiting for the
// budget: background work (warm pools) asks before it starts, so that it never queues behind
// pods.
func (c *Client) Spare(p cloud.Purpose) bool { return c.mutating.Spare(p) }

func hasCredentials(ctx context.Context, cfg aws.Config) bool {
	if cfg.Credentials == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := cfg.Credentials.Retrieve(ctx)
	return err == nil
}

// call runs one EC2 action once the client-side budget of its class serves its purpose,
// records it, and classifies its error. A throttled call slows the budget down.
func call[T any](ctx context.Context, c *Client, action string, mutating bool, fn func(context.Context) (T, error)) (T, error) {
	bucket := c.describe
	if mutating {
		bucket = c.mutating
	}
	purpose := cloud.PurposeOf(ctx)
	var zero T
	queued := time.Now()
	if err := bucket.Wait(ctx, purpose); err != nil {
		return zero, fmt.Errorf("%s: %w", action, err)
	}
	start := time.Now()
	c.metrics.waited(purpose, start.Sub(queued))
	out, err := fn(ctx)
	err = classify(action, err)
	if errors.Is(err, cloud.ErrThrottled) {
		bucket.Throttled()
	}
	c.metrics.observe(action, purpose, err, time.Since(start))
	return out, err
}

func orDefault(v, d float64) float64 {
	if v == 0 {
		return d
	}
	return v
}

func orDefaultInt(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}
