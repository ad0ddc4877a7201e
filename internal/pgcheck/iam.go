package pgcheck

import (
	"context"
	"fmt"
	"net"
	"strconv"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"
)

// Region is the seed's REGION, used when the environment names none (the pod identity webhook
// sets AWS_REGION).
const Region = "us-west-2"

// Auth is how pgcheck logs in.
type Auth string

// The two ways: the tutorial's PASSWORD, or postgres_test_iam.py's RDS IAM auth token.
const (
	AuthPassword Auth = "password"
	AuthIAM      Auth = "iam"
)

// ParseAuth reads the --auth flag.
func ParseAuth(s string) (Auth, error) {
	switch a := Auth(s); a {
	case AuthPassword, AuthIAM:
		return a, nil
	}
	return "", fmt.Errorf("--auth %q: want %s or %s", s, AuthPassword, AuthIAM)
}

// IAMToken is postgres_test_iam.py's generate_db_auth_token: credentials from the SDK's
// default chain (in a pod given a role, the web identity token file the pod identity webhook
// mounts, exchanged with STS; AWS_ENDPOINT_URL_STS points at the local VPC's) signed into a
// connect token for c's host, port and user.
func IAMToken(ctx context.Context, c Config) (string, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return "", fmt.Errorf("loading AWS configuration: %w", err)
	}
	region := cfg.Region
	if region == "" {
		region = Region
	}
	endpoint := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	token, err := auth.BuildAuthToken(ctx, endpoint, region, c.User, cfg.Credentials)
	if err != nil {
		return "", fmt.Errorf("building the RDS auth token for %s as %s: %w", endpoint, c.User, err)
	}
	return token, nil
}
