package testenv

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sync"
	"testing"
)

var (
	buildMu  sync.Mutex
	builtDir string
	built    = map[string]string{}
)

// Build compiles the main package pkg (e.g. "github.com/podsg/podsg/cmd/podsg-vpc") once per
// test binary and returns the executable's path. The binaries live in one temporary directory,
// removed by Main (the package's TestMain) after the tests, or left to the OS's temp cleaning.
// A test that builds a program runs it, so it is not a unit test: Build skips under
// PODSG_TEST_TIER=unit.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	outsideUnitTier(t, "builds "+pkg)
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[pkg]; ok {
		return p
	}
	if builtDir == "" {
		dir, err := os.MkdirTemp("", "podsg-test-bin-")
		if err != nil {
			t.Fatal(err)
		}
		builtDir = dir
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building %s: %v", pkg, err)
	}
	out := filepath.Join(builtDir, path.Base(pkg))
	cmd := exec.Command(goBin, "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	built[pkg] = out
	return out
}

// Main runs the tests of m, removes what Build compiled and exits with the tests' status: the
// TestMain of a package whose tests build programs, or its last statement.
func Main(m *testing.M) {
	code := m.Run()
	CleanupBuilds()
	os.Exit(code)
}

// CleanupBuilds removes what Build compiled; Main calls it after the tests.
func CleanupBuilds() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if builtDir != "" {
		_ = os.RemoveAll(builtDir)
		builtDir, built = "", map[string]string{}
	}
}
