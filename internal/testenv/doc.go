// Package testenv starts real Kubernetes control planes for tests and gates the test tiers.
//
// Tiers (see docs/testing.md):
//   - unit: plain `go test`, no root, no binaries.
//   - real-apiserver: RequireKube; etcd + kube-apiserver (envtest with the binaries that
//     hack/kube-bin.sh builds), optionally the real kube-scheduler and kube-controller-manager.
//   - privileged: RequireRoot; network namespaces, nftables, real traffic.
//   - e2e: the local cluster, built on all of the above.
//
// Outside `make test`, a test whose prerequisites are missing skips and says how to get them;
// under `make test` (PODSG_TEST_STRICT=1) it fails instead, so CI never passes by skipping.
package testenv
