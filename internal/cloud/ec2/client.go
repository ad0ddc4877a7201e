package ec2

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
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
	// MutatingQPS/MutatingBurst and DescribeQPS/DescribeBurst are client-side token buckets in
	// front of EC2's own, so that a burst of pods slows us down before EC2 throttles the whole
	// account. Zero means the defaults (5/10 mutating, 20/100 describe), well under EC2's.
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
}

// Client makes podsg's EC2 calls. Safe for concurrent use.
type Client struct {
	api      *ec2.Client
	mutating *rate.Limiter
	describe *rate.Limiter
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
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Client{
		api:      api,
		mutating: rate.NewLimiter(rate.Limit(orDefault(opts.MutatingQPS, 5)), orDefaultInt(opts.MutatingBurst, 10)),
		describe: rate.NewLimiter(rate.Limit(orDefault(opts.DescribeQPS, 20)), orDefaultInt(opts.DescribeBurst, 100)),
		metrics:  m,
		pageSize: int32(orDefaultInt(opts.PageSize, 1000)), //nolint:gosec // small by construction
	}, nil
}

func hasCredentials(ctx context.Context, cfg aws.Config) bool {
	if cfg.Credentials == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := cfg.Credentials.Retrieve(ctx)
	return err == nil
}

// call runs one EC2 action behind the client-side limiter of its class, records it, and
// classifies its error.
func call[T any](ctx context.Context, c *Client, action string, mutating bool, fn func(context.Context) (T, error)) (T, error) {
	limiter := c.describe
	if mutating {
		limiter = c.mutating
	}
	var zero T
	if err := limiter.Wait(ctx); err != nil {
		return zero, fmt.Errorf("%s: waiting for the client-side rate limiter: %w", action, err)
	}
	start := time.Now()
	out, err := fn(ctx)
	err = classify(action, err)
	c.metrics.observe(action, err, time.Since(start))
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
