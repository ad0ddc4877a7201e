package podidentity

import (
	"encoding/csv"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// The annotations AWS's webhook reads, on the ServiceAccount unless said otherwise.
const (
	// AnnotationRoleARN names the IAM role the ServiceAccount's pods assume. Absent or empty:
	// the pods are not mutated.
	AnnotationRoleARN = "eks.amazonaws.com/role-arn"
	// AnnotationAudience is the projected token's audience (default sts.amazonaws.com); the
	// role's trust policy checks it as the provider's :aud condition.
	AnnotationAudience = "eks.amazonaws.com/audience"
	// AnnotationSTSRegionalEndpoints "true" or "false" overrides the default of injecting
	// AWS_STS_REGIONAL_ENDPOINTS=regional; any other value is ignored.
	AnnotationSTSRegionalEndpoints = "eks.amazonaws.com/sts-regional-endpoints"
	// AnnotationTokenExpiration is the token's lifetime in seconds, on the ServiceAccount or,
	// overriding it, on the pod. Below MinTokenExpiration it is raised to it; a value that is not
	// an integer is ignored. There is no upper bound here (AWS's webhook has none either): the
	// apiserver caps what it issues with --service-account-max-token-expiration.
	AnnotationTokenExpiration = "eks.amazonaws.com/token-expiration" //nolint:gosec // an annotation's name, not a credential
	// AnnotationSkipContainers, on the pod, is a comma-separated list of container and init
	// container names the webhook leaves alone. Read as one CSV record, as AWS does: names are
	// not trimmed, and a value that is not valid CSV skips nothing.
	AnnotationSkipContainers = "eks.amazonaws.com/skip-containers"
	// LabelSkipWebhook, a pod label, keeps the webhook away from the pod altogether: AWS's
	// webhook configuration excludes such pods with its objectSelector, and so does podsg's.
	LabelSkipWebhook = "eks.amazonaws.com/skip-pod-identity-webhook" //nolint:gosec // a label's name, not a credential
)

// What the webhook adds, named as AWS's webhook names them.
const (
	VolumeName             = "aws-iam-token"
	MountPath              = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
	TokenPath              = "token"
	DefaultAudience        = "sts.amazonaws.com"
	DefaultTokenExpiration = int64(86400)
	// MinTokenExpiration is the shortest token the kube-apiserver issues for a projected volume.
	MinTokenExpiration = int64(600)
	// DefaultSTSRegionalEndpoints: EKS's webhook injects AWS_STS_REGIONAL_ENDPOINTS=regional
	// unless the ServiceAccount says "false" (AWS's own binary defaults to false, EKS runs it
	// with the flag on), so that SDKs that still default to the global endpoint use the
	// region's.
	DefaultSTSRegionalEndpoints = true
)

// The environment variables the AWS SDKs read.
const (
	EnvRoleARN              = "AWS_ROLE_ARN"
	EnvTokenFile            = "AWS_WEB_IDENTITY_TOKEN_FILE" //nolint:gosec // a variable's name, not a credential
	EnvRegion               = "AWS_REGION"
	EnvDefaultRegion        = "AWS_DEFAULT_REGION"
	EnvSTSRegionalEndpoints = "AWS_STS_REGIONAL_ENDPOINTS"
	// EnvEndpointURL is the SDKs' endpoint for every service; AWS_ENDPOINT_URL_<SERVICE>
	// overrides it for one.
	EnvEndpointURL = "AWS_ENDPOINT_URL"
)

// LocalVPCServices are the SDK service ids the local VPC serves (EC2 and RDS; IAM and STS
// beside them), each reached through AWS_ENDPOINT_URL_<id>, the "service-specific endpoints"
// setting of the AWS SDKs and CLI (e.g. aws-sdk-go-v2's config, botocore, AWS CLI ≥ 1.29/2.13).
var LocalVPCServices = []string{"EC2", "IAM", "RDS", "STS"}

// ServicePlaceholder in Options.LocalVPCEndpoint stands for the service's id in lower case,
// so that each service gets its own hostname (http://{service}.us-west-2.amazonaws.com: the
// private DNS names of the local VPC's interface endpoint, which pods on branch ENIs reach).
const ServicePlaceholder = "{service}"

// ServiceEndpointURL is the endpoint URL of service (an id of LocalVPCServices) that
// template names.
func ServiceEndpointURL(template, service string) string {
	return strings.ReplaceAll(template, ServicePlaceholder, strings.ToLower(service))
}

// EndpointEnv is the variable that points the SDKs' client of service at an endpoint.
func EndpointEnv(service string) string { return EnvEndpointURL + "_" + service }

// Options are the webhook's settings, the counterparts of AWS's flags.
type Options struct {
	// Region is injected as AWS_REGION and AWS_DEFAULT_REGION; "" injects neither.
	Region string
	// LocalVPCEndpoint, the local VPC's API URL as pods reach it, is injected as the endpoint of
	// every service in LocalVPCServices, with ServicePlaceholder replaced by the service's id.
	// Never set on AWS.
	LocalVPCEndpoint string
}

// Config is what a ServiceAccount's annotations ask for its pods.
type Config struct {
	RoleARN              string
	Audience             string
	STSRegionalEndpoints bool
	TokenExpiration      int64
}

// ForServiceAccount reads sa's annotations; ok is false when they name no role (sa nil, the
// annotation absent or empty), and then no pod of sa is mutated.
func ForServiceAccount(sa *corev1.ServiceAccount) (cfg Config, ok bool) {
	if sa == nil || sa.Annotations[AnnotationRoleARN] == "" {
		return Config{}, false
	}
	a := sa.Annotations
	cfg = Config{RoleARN: a[AnnotationRoleARN], Audience: DefaultAudience, STSRegionalEndpoints: DefaultSTSRegionalEndpoints,
		TokenExpiration: DefaultTokenExpiration}
	if v, set := a[AnnotationAudience]; set {
		cfg.Audience = v // as AWS: even empty, which the apiserver reads as its own audience
	}
	if v, err := strconv.ParseBool(a[AnnotationSTSRegionalEndpoints]); err == nil {
		cfg.STSRegionalEndpoints = v
	}
	cfg.TokenExpiration = TokenExpiration(a[AnnotationTokenExpiration], cfg.TokenExpiration)
	return cfg, true
}

// TokenExpiration parses an expiration annotation's value: fallback when it is not an integer
// (or absent), at least MinTokenExpiration otherwise.
func TokenExpiration(value string, fallback int64) int64 {
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return fallback
	}
	return max(v, MinTokenExpiration)
}

// SkippedContainers returns the names the pod's skip-containers annotation lists.
func SkippedContainers(pod *corev1.Pod) map[string]bool {
	out := map[string]bool{}
	v, ok := pod.Annotations[AnnotationSkipContainers]
	if !ok {
		return out
	}
	names, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return out
	}
	for _, n := range names {
		out[n] = true
	}
	return out
}
