// Package inventory is podsg-controller's in-memory inventory of trunk and branch ENIs, per
// node: each node's trunk, the branch ENIs on it with the VLAN id and the pod each one holds,
// the branches cooling down and until when, and so the pod-eni capacity a node may advertise.
// The trunk controller fills it (creating or adopting a trunk, rebuilding its branches from
// EC2), the branch controller reserves and releases branches, the releaser and the sweeper
// read it, and all of them read capacity from it.
//
// It is named for what it is: not a controller (the trunk controller is
// internal/controller/trunk) and not a record of its own. It is never persisted: EC2 (tags,
// trunk associations) and pod annotations are the record it is rebuilt from after a restart.
package inventory
