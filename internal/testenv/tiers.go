package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// StrictEnv is set by `make test`: missing prerequisites fail a test instead of skipping it.
const StrictEnv = "PODSG_TEST_STRICT"

// AssetsEnv names the directory of kube-apiserver, etcd, kubectl, kube-scheduler,
// kube-controller-manager and kubelet; envtest reads the same variable.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// Strict reports whether missing prerequisites must fail tests (under `make test`).
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// unavailable skips or, under `make test`, fails the test.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if Strict() {
		t.Fatalf("%s (%s=1: a missing prerequisite fails instead of skipping)", why, StrictEnv)
	}
	t.Skip(why)
}

// RequireRoot marks a privileged test: it needs root for network namespaces and nftables.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		// Root is the one prerequisite that even `make test` cannot provide, so this always skips.
		t.Skip("privileged tier: needs root (network namespaces, nftables); run `sudo make test`")
	}
}

// KubeBinDir returns the directory of the Kubernetes binaries, or skips/fails the test with a
// message that says how to build them.
func KubeBinDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(AssetsEnv)
	if dir == "" {
		unavailable(t, "real-apiserver tier: "+AssetsEnv+" is not set; run `make test`, or export "+AssetsEnv+"=$(hack/kube-bin.sh)")
		return ""
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl", "kube-scheduler", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			unavailable(t, "real-apiserver tier: "+b+" missing in "+AssetsEnv+"="+dir+"; run hack/kube-bin.sh")
			return ""
		}
	}
	return dir
}
