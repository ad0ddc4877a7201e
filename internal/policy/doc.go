// Package policy holds the rules that decide a pod's security groups, written once for every
// binary that applies them: which SecurityGroupPolicies select a pod and the union of their
// groups (the mutating webhook at admission, the status controller, podsg explain), each
// selector's verdict (explain), and the encoding of the groups annotation. It is pure: no
// client, no controller, no metrics, so the podsg CLI can use it without starting anything.
// A policy's status is reported by internal/controller/policystatus.
package policy
