// Package podidentity holds the rules of IAM roles for service accounts (IRSA) as AWS's
// amazon-eks-pod-identity-webhook applies them, written once for the two places that need
// them: podsg-controller's pod identity webhook (internal/webhook/pod), which gives a pod the
// role its ServiceAccount names, and podsg explain, which checks that a pod has it.
//
// A ServiceAccount annotated eks.amazonaws.com/role-arn makes every pod created with it get,
// in each container not named in the pod's eks.amazonaws.com/skip-containers:
//   - AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, which the AWS SDKs' default credential
//     chain turns into sts:AssumeRoleWithWebIdentity;
//   - AWS_STS_REGIONAL_ENDPOINTS=regional, AWS_REGION and AWS_DEFAULT_REGION;
//   - the volume aws-iam-token, a projected ServiceAccount token (audience sts.amazonaws.com,
//     86400 s) mounted read-only at /var/run/secrets/eks.amazonaws.com/serviceaccount;
//   - against the local VPC only, the AWS_ENDPOINT_URL_<SERVICE> variables of the services
//     it serves, so the SDKs reach it instead of AWS.
//
// What a container already sets is its own: Apply adds only what is missing, and leaves a
// container alone that sets its web identity, its region and its STS endpoint choice. Apply
// is idempotent, so the webhook can run again on a pod it mutated (reinvocation, or AWS's
// webhook beside it on EKS).
//
// It is pure: no client, no webhook server, so the podsg CLI uses it without starting
// anything.
package podidentity
