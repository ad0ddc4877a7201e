// Package ec2 implements podsg's EC2 calls with aws-sdk-go-v2, one client for AWS and for the
// local VPC (an endpoint override), mapping SDK types to package cloud's and classifying every
// error into cloud's kinds.
package ec2
