// Package policy holds the rules that decide a pod's security groups and its branch ENI,
// written once for every binary that applies them:
//   - which SecurityGroupPolicies select a pod and the union of their groups (the mutating
//     webhook at admission, the status controller, podsg explain), with each selector's verdict
//     (explain), and the encoding of the podsg.io/security-groups annotation;
//   - whether a pod asks for a branch ENI (WantsBranchENI: the controller, the node agent,
//     explain, reach), the webhook's mark that makes it ask (RequestBranchENI) and the pods it
//     never marks (IsWindows);
//   - whether a pod has finished for good (Terminal: the controllers, the sweeper, explain).
//
// It is pure: no client, no controller, no metrics, so the podsg CLI and the node agent use it
// without starting anything. A policy's status is reported by internal/controller/policystatus.
package policy
