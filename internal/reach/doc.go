// Package reach decides, from security groups alone, whether EC2 lets a new flow from one
// network interface reach another, and names the rules that decide it (`podsg reach`).
//
// Evaluate is a pure function over a small model and follows EC2, which the local VPC's data
// path (internal/vpc/dataplane/firewall) enforces the same way: a flow needs an egress rule of
// one of the source ENI's groups and an ingress rule of one of the destination ENI's groups
// (the union of all their rules); return traffic is implicit. Load builds the model from EC2
// and, for pods, from Kubernetes, behind small interfaces the package owns.
package reach
