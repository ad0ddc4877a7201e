package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/podsg/podsg/internal/explain"
)

// errOnlyLocalVPC is --db's answer on AWS. Reading the role's policies and evaluating them
// is the whole decision in the local VPC, but on AWS permissions boundaries, SCPs and session
// policies decide too; IAM's SimulatePrincipalPolicy would see them, but the local IAM does
// not serve it, so that path could not be tested and is not offered.
var errOnlyLocalVPC = errors.New("only the local VPC answers --db (give its endpoint with --ec2-endpoint): on AWS, " +
	"permissions boundaries, SCPs and session policies decide as well, and IAM's SimulatePrincipalPolicy, which sees them, " +
	"is not served by the local IAM, so podsg cannot test asking it")

// unanswered is the RDSAuthorizer where no local VPC is given.
type unanswered struct{}

func (unanswered) MayConnect(context.Context, string, explain.RDSTarget) (explain.RDSAnswer, error) {
	return explain.RDSAnswer{}, errOnlyLocalVPC
}

func (unanswered) MayAssume(context.Context, string, explain.WebIdentity) (explain.TrustAnswer, error) {
	return explain.TrustAnswer{}, errOnlyLocalVPC
}

// clusterIssuer reads the cluster's service-account issuer from its discovery document, as
// STS reads it (the admin's kubeconfig may read it; an ordinary user's may not, without
// podsg demo's binding of system:service-account-issuer-discovery).
func clusterIssuer(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", fmt.Errorf("creating a Kubernetes client: %w", err)
	}
	raw, err := cs.Discovery().RESTClient().Get().AbsPath("/.well-known/openid-configuration").DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("reading /.well-known/openid-configuration: %w", err)
	}
	var disc struct {
		Issuer string `json:"issuer"`
	}
	if err := json.Unmarshal(raw, &disc); err != nil || disc.Issuer == "" {
		return "", fmt.Errorf("reading the issuer from /.well-known/openid-configuration %q: %w", raw, err)
	}
	return disc.Issuer, nil
}

// rdsAuthorizer asks the local VPC at endpoint (its IAM for the role's policies, its RDS for
// the instance), or answers that only the local VPC answers when endpoint is "".
func rdsAuthorizer(ctx context.Context, region, endpoint string) (explain.RDSAuthorizer, error) {
	if endpoint == "" {
		return unanswered{}, nil
	}
	cfg, err := localVPCConfig(ctx, region)
	if err != nil {
		return nil, err
	}
	return &explain.PolicyAuthorizer{
		IAM:    iam.NewFromConfig(cfg, func(o *iam.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		RDS:    rds.NewFromConfig(cfg, func(o *rds.Options) { o.BaseEndpoint = aws.String(endpoint) }),
		Region: region,
	}, nil
}
