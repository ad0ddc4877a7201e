package cli

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
)

// The CLI runs outside any instance. Against AWS (no endpoint) it takes the SDK's default
// credential chain, instance metadata included, as any AWS tool does. Against the local VPC it
// never asks instance metadata: this host's 169.254.169.254 is not the local VPC's but its
// network's (a real cloud's metadata service, or a default route out), and the local VPC
// without --credentials takes any key anyway.

// ec2Client is the CLI's EC2 client: AWS's, or the local VPC's at endpoint.
func ec2Client(ctx context.Context, region, endpoint string) (*cloudec2.Client, error) {
	return cloudec2.New(ctx, cloudec2.Options{Region: region, Endpoint: endpoint, NoInstanceMetadata: endpoint != ""})
}

// localVPCConfig is the SDK configuration for the local VPC's other APIs (RDS, IAM): the
// credentials of the environment or shared files, else placeholders.
func localVPCConfig(ctx context.Context, region string) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region),
		awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		cfg.Credentials = credentials.NewStaticCredentialsProvider("podsg", "podsg", "")
	}
	return cfg, nil
}
