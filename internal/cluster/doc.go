// Package cluster runs the local Kubernetes cluster's building blocks as plain processes: a
// control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager) and nodes
// (containerd and the real kubelet, each inside the network namespace of a local-VPC instance).
// Every process, file, mount and cgroup lives under a state directory, so that Down/Stop can
// remove all of it, also from a later invocation that only knows the directory.
package cluster
