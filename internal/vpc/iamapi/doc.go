// Package iamapi serves the IAM Query API (version 2010-05-08, awsquery
// protocol) on the local VPC's endpoint: what `aws iam …` and the SDKs'
// IAM clients send for OIDC identity providers, roles with trust policies,
// managed and inline policies and instance profiles. The entities live in
// package state (same file, same transactions as the VPC); policy
// documents are checked with package iampolicy, which also evaluates them
// for STS and RDS. IAM is a global service: clients reach it here with
// --endpoint-url or AWS_ENDPOINT_URL_IAM, and the request's Version picks it.
package iamapi
