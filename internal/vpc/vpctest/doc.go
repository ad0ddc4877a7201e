// Package vpctest owns the in-process local VPC for tests: state store,
// handlers and HTTP server on an httptest loopback listener, with a real
// aws-sdk-go-v2 EC2 client pointed at it, deterministic ids and a fake clock.
package vpctest
