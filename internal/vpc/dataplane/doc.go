// Package dataplane owns the seam between committed VPC state and the
// network: after every committed mutation the state store hands the new
// state to a Dataplane before the API call is answered. "none" only keeps
// state; "netns" (package kernel) builds the VPC from network namespaces
// and enforces security groups with nftables.
package dataplane
