// Package server owns the local VPC's HTTP front end: EC2 Query requests
// are authenticated (SigV4, optional), throttled, delayed and fault-injected
// according to a realism profile, dispatched to the query router, counted in
// Prometheus metrics and written to a request log. It also serves /healthz
// and /metrics.
package server
