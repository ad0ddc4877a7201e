// Package testenv starts real Kubernetes control planes for tests and gates the test tiers.
//
// Tiers (see docs/testing.md):
//   - unit: plain `go test`, no root, no binaries, no programs besides the test itself.
//   - real-apiserver: KubeBinDir or Start; etcd + kube-apiserver (envtest with the binaries that
//     hack/kube-bin.sh builds), optionally the real kube-scheduler and kube-controller-manager.
//   - privileged: RequireRoot; network namespaces, nftables, real traffic.
//   - e2e: the local cluster, built on all of the above.
//
// Require (commands and files from Debian packages), Build (a program of this module) and
// StartProcess also mark a test as outside the unit tier.
//
// Outside `make test`, a test whose prerequisites are missing skips and says how to get them;
// under `make test` (PODSG_TEST_STRICT=1) it fails instead, so CI never passes by skipping.
// Under `make test-unit` (PODSG_TEST_TIER=unit) every gate skips, so only the unit tier runs,
// as any user, in seconds.
package testenv
