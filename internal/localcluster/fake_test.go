package localcluster_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/internal/cluster"
	"github.com/podsg/podsg/internal/testenv"
)

func TestMain(m *testing.M) {
	if slices.Contains(fakePrograms, filepath.Base(os.Args[0])) {
		os.Exit(fakeProgram(os.Args[1:]))
	}
	testenv.Main(m)
}

// fakePrograms are the names under which this test binary plays podsg's daemons (and a
// PostgreSQL left in the VPC) for the tests that need no root: see fakeBinDir.
var fakePrograms = []string{"podsg-vpc", "podsg-controller", "postgres"}

// failCleanup, beside a fake podsg-vpc, makes its cleanup fail.
const failCleanup = "fail-cleanup"

// fakeProgram waits for SIGTERM, except `podsg-vpc cleanup --state-dir DIR`, which fails when
// told to and otherwise does what the real one does to processes: it kills those of the
// VPC (here: whatever names DIR) and waits until they are gone.
func fakeProgram(args []string) int {
	if len(args) < 3 || args[0] != "cleanup" || args[1] != "--state-dir" {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		return 0
	}
	self, _ := os.Executable()
	if _, err := os.Stat(filepath.Join(filepath.Dir(os.Args[0]), failCleanup)); err == nil {
		fmt.Fprintln(os.Stderr, "injected failure of", self, "cleanup")
		return 1
	}
	if err := killNaming(args[2]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// killNaming SIGKILLs every process whose command line names dir (but the caller and its
// ancestors) and waits until none is left.
func killNaming(dir string) error {
	return wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		procs, err := cluster.ProcessesNaming(dir)
		for _, p := range procs {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
		return len(procs) == 0, err
	})
}

// fakeBinDir links this test binary as podsg-vpc, podsg-controller and postgres in a new
// directory: `up`'s binaries for a cluster without Kubernetes.
func fakeBinDir(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "up-bin")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range fakePrograms {
		if err := os.Symlink(self, filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
