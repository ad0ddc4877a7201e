// Package reach decides, from security groups, whether EC2 lets a new flow from one network
// interface reach another, and names the rules that decide it (`podsg reach`); and, from the
// cluster's policies (LoadPolicies: every layer of internal/netpol), what network policy says
// of the same flow at each end.
//
// Evaluate is a pure function over a small model and follows EC2, which the local VPC's data
// path (internal/vpc/dataplane/firewall) enforces the same way: a flow needs an egress rule of
// one of the source ENI's groups and an ingress rule of one of the destination ENI's groups
// (the union of all their rules); return traffic is implicit. Load builds the model from EC2
// and, for pods, from Kubernetes, behind small interfaces the package owns. Policies.Judge
// judges the policies for the same two ends: a pod the user named, else the pod or node
// holding the address, else an address outside the cluster (which no policy of its own
// polices).
package reach
