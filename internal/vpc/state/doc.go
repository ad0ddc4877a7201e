// Package state owns the local VPC's domain model and EC2 semantics: VPCs,
// subnets, security groups and rules, instances, network interfaces and
// trunk associations; IP and MAC allocation and the limits EC2 enforces. The
// model lives in memory for fast reads and every committed transaction is
// written to a bbolt file (schema-versioned, migrated on open) before the
// caller sees success.
package state
