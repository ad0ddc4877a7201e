// Package clustertest holds test helpers for the local cluster's privileged tier: network
// namespaces standing in for VPC instances, veth links between them, and a PostgreSQL server
// standing in for RDS. Everything a helper creates is removed by t.Cleanup, also on failure.
package clustertest
