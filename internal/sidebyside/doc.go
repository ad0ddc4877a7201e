// Package sidebyside puts AWS's own security-groups-for-pods controller (vpc-resource-controller,
// a pinned release built from the Go module proxy by hack/aws-vpc-rc.sh and run unmodified, as a
// subprocess) and podsg-controller on the same work: each on a fresh local VPC (podsg-vpc, EC2's
// throttling profile), a real kube-apiserver and kube-scheduler, and the same simulated nodes.
//
// It holds tests only, built with the tag awsrc: `make conformance-aws-controller` (AWS's
// controller gives a pod a branch ENI through the local VPC and frees it after its cool-down)
// and `make bench-compare` (one workload against both, one table). Neither is part of `make
// test`: AWS's controller takes 3 (warm) to 10 (cold) minutes to build, and it serves its
// webhooks and health checks on fixed host ports (9443, 61779) that the local cluster's
// podsg-controller also uses.
package sidebyside
