package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// StrictEnv is set by `make test`: missing prerequisites fail a test instead of skipping it.
const StrictEnv = "PODSG_TEST_STRICT"

// AssetsEnv names the directory of kube-apiserver, etcd, kubectl, kube-scheduler,
// kube-controller-manager and kubelet; envtest reads the same variable.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// TierEnv selects the tiers that run. Unset, every tier this machine can run does; "unit"
// (UnitTier, set by `make test-unit`) runs the unit tier only: every gate of this package (root,
// the Kubernetes binaries, prerequisites, building or starting a program) skips, even as root
// with the binaries at hand, so what runs needs nothing but the Go toolchain.
const TierEnv = "PODSG_TEST_TIER"

// UnitTier is the one value TierEnv takes.
const UnitTier = "unit"

// Strict reports whether missing prerequisites must fail tests (under `make test`).
func Strict() bool { return os.Getenv(StrictEnv) == "1" }

// tierSkip decides for a test that needs what (beyond the unit tier) when TierEnv is tier: ""
// runs it, a message skips it. An unknown tier, or the unit tier under strict (`make test`
// runs every tier: skipping all but the unit tests there would pass CI by skipping), is an error.
func tierSkip(tier string, strict bool, what string) (string, error) {
	switch {
	case tier == "":
		return "", nil
	case tier != UnitTier:
		return "", fmt.Errorf("%s=%q: unset it to run every tier, or set it to %q", TierEnv, tier, UnitTier)
	case strict:
		return "", fmt.Errorf("%s=%s and %s=1 contradict: `make test` runs every tier, `make test-unit` the unit tier only", TierEnv, UnitTier, StrictEnv)
	}
	return fmt.Sprintf("not a unit test (%s), and %s=%s runs the unit tier only", what, TierEnv, UnitTier), nil
}

// outsideUnitTier is the first step of every gate: the test needs what, so it skips when only
// the unit tier runs, and fails on a bad TierEnv.
func outsideUnitTier(t testing.TB, what string) {
	t.Helper()
	skip, err := tierSkip(os.Getenv(TierEnv), Strict(), what)
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
}

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
	outsideUnitTier(t, "privileged tier: needs root")
	if os.Geteuid() != 0 {
		// Root is the one prerequisite that even `make test` cannot provide, so this always skips.
		t.Skip("privileged tier: needs root (network namespaces, nftables); run `sudo make test`")
	}
}

// KubeBinDir returns the directory of the Kubernetes binaries, or skips/fails the test with a
// message that says how to build them.
func KubeBinDir(t testing.TB) string {
	t.Helper()
	outsideUnitTier(t, "real-apiserver tier: needs the Kubernetes binaries")
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
