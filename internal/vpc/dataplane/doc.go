// Package dataplane owns the seam between committed VPC state and the
// network: after every committed mutation the state store hands the new
// state to a Dataplane before the API call is answered. "none" only keeps
// state; the kernel data path lands with its own issue.
package dataplane
