// Package localcluster runs `podsg local up/down/status` and `podsg demo`: a real Kubernetes
// cluster whose nodes are instances of the local VPC, with podsg running on it.
//
//	root namespace: podsg-vpc (EC2+RDS API, data path), control plane (apiserver on the host
//	                ENI's address in the VPC), podsg-controller (webhooks on 127.0.0.1)
//	per node:       an instance namespace with containerd, kubelet and podsg-agent; podsg-cni
//	                installed by the agent; EC2 reached at the VPC's endpoint 169.254.169.254:8450
//
// Everything it starts is a daemon with a pid file under the state dir, so `up` is idempotent
// and `down` works from any later invocation.
package localcluster
