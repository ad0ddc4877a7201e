// Package iampolicy parses and evaluates IAM policy documents with AWS's
// semantics, as a pure library (no I/O, no clock: the caller puts the time
// into the request context): explicit Deny wins, default deny, an Allow is
// needed; Action/NotAction (case-insensitive), Resource/NotResource (ARN
// segments, case-sensitive) with * and ? wildcards; Principal/NotPrincipal
// for resource-based policies such as a role's trust policy; Condition with
// the string, numeric, date, Bool, IP address, ARN and Null operators, their
// IfExists and ForAnyValue/ForAllValues forms; policy variables.
//
// It is its own package, apart from the local IAM that stores policies
// (internal/vpc/state, internal/vpc/iamapi), because everything that
// decides access asks it: STS for a trust policy, the local RDS for
// rds-db:connect, podsg explain.
package iampolicy
