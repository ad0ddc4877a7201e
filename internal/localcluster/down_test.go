package localcluster_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/internal/cli"
	"github.com/podsg/podsg/internal/localcluster"
)

// fakeCluster is a local cluster without Kubernetes (no root needed): podsg-vpc and
// podsg-controller, this test binary under their names, started by up's code from a
// directory of their own, which up records. Whatever the test does, they are killed at its end.
func fakeCluster(t *testing.T) (o localcluster.Options, vpcPID, ctrlPID int) {
	t.Helper()
	o = localcluster.Options{StateDir: filepath.Join(t.TempDir(), "podsg", "local"), BinDir: fakeBinDir(t), KubeBinDir: t.TempDir()}
	t.Cleanup(func() {
		if err := killNaming(o.StateDir); err != nil {
			t.Error(err)
		}
	})
	if err := localcluster.StartFakeVPCAndController(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	return o, pidFile(t, o, "podsg-vpc"), pidFile(t, o, "podsg-controller")
}

func pidFile(t *testing.T, o localcluster.Options, name string) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(o.StateDir, "run", name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// podsg runs the podsg command line in this process: a podsg outside up's binary directory
// (this test binary's has no podsg-vpc), like `go run ./cmd/podsg`.
func podsg(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Run(t.Context(), args, &out, &out)
	t.Logf("podsg %s: exit %d\n%s", strings.Join(args, " "), code, out.String())
	return code, out.String()
}

// runs reports whether pid is a live process (not a zombie).
func runs(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z'
}

// waitExit polls /proc until pid has exited.
func waitExit(t *testing.T, pid int) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		return !runs(pid), nil
	})
	if err != nil {
		t.Fatalf("pid %d still runs", pid)
	}
}

// TestDownFromAnotherBinary is `go run ./cmd/podsg local down` after `bin/podsg local up`: the
// asking podsg lies elsewhere, and the daemons are still found, stopped and removed, with up's
// podsg-vpc for the cleanup.
func TestDownFromAnotherBinary(t *testing.T) {
	o, vpc, ctrl := fakeCluster(t)
	if code, _ := podsg(t, "local", "down", "--state-dir", o.StateDir); code != 0 {
		t.Errorf("podsg local down exited %d", code)
	}
	for name, pid := range map[string]int{"podsg-vpc": vpc, "podsg-controller": ctrl} {
		if runs(pid) {
			t.Errorf("%s (pid %d) still runs after down", name, pid)
		}
	}
	if _, err := os.Stat(o.StateDir); err == nil {
		t.Errorf("state dir %s left", o.StateDir)
	}
}

// TestDownKeepsGoingAndSaysWhatIsLeft: podsg-vpc cleanup fails (injected), after an older down
// lost podsg-vpc's pid file. Down still stops every daemon, then names what is left (the local
// RDS's PostgreSQL, which only the cleanup stops) with its pid, keeps the state dir and fails;
// status shows the same; once the cleanup works, another down finishes.
func TestDownKeepsGoingAndSaysWhatIsLeft(t *testing.T) {
	o, vpc, ctrl := fakeCluster(t)
	if err := os.Remove(filepath.Join(o.StateDir, "run", "podsg-vpc.pid")); err != nil {
		t.Fatal(err)
	}
	pg := exec.Command(filepath.Join(o.BinDir, "postgres"), "-D", filepath.Join(o.StateDir, "vpc", "rds", "db-1"))
	pg.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = pg.Wait() }() // reap it, whoever kills it
	marker := filepath.Join(o.BinDir, failCleanup)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	code, out := podsg(t, "local", "down", "--state-dir", o.StateDir)
	if code == 0 {
		t.Error("podsg local down succeeded with podsg-vpc cleanup failing")
	}
	for _, want := range []string{
		"injected failure",
		fmt.Sprintf("left behind by the local cluster at %s:\n  process %d: %s -D %s/vpc/rds/db-1\n", o.StateDir, pg.Process.Pid, pg.Path, o.StateDir),
		"1 process left",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("down's output lacks %q", want)
		}
	}
	for name, pid := range map[string]int{"podsg-vpc": vpc, "podsg-controller": ctrl} {
		if runs(pid) {
			t.Errorf("%s (pid %d) still runs after down", name, pid)
		}
	}
	if _, err := os.Stat(o.StateDir); err != nil {
		t.Errorf("state dir removed although PostgreSQL runs: %v", err)
	}
	_, status := podsg(t, "local", "status", "--state-dir", o.StateDir)
	if want := fmt.Sprintf("  pid %d: %s -D", pg.Process.Pid, pg.Path); !strings.Contains(status, want) {
		t.Errorf("status lacks %q", want)
	}

	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	if code, _ := podsg(t, "local", "down", "--state-dir", o.StateDir); code != 0 {
		t.Errorf("second podsg local down exited %d", code)
	}
	if runs(pg.Process.Pid) {
		t.Error("PostgreSQL still runs after the second down")
	}
	if _, err := os.Stat(o.StateDir); err == nil {
		t.Errorf("state dir %s left after the second down", o.StateDir)
	}
}

// TestStatusTellsTheTruth: a running podsg-vpc whose pid file is gone is reported with its pid,
// found by its command line; a pid file of a dead podsg-controller is reported as stale.
func TestStatusTellsTheTruth(t *testing.T) {
	o, vpc, ctrl := fakeCluster(t)
	if err := os.Remove(filepath.Join(o.StateDir, "run", "podsg-vpc.pid")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(ctrl, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitExit(t, ctrl)
	code, out := podsg(t, "local", "status", "--state-dir", o.StateDir)
	if code != 0 {
		t.Errorf("podsg local status exited %d", code)
	}
	for _, want := range []string{
		fmt.Sprintf(`(?m)^podsg-vpc +running \(pid %d\), its pid file is missing$`, vpc),
		fmt.Sprintf(`(?m)^podsg-controller +stopped, stale pid file: pid %d is not running$`, ctrl),
		`(?m)^etcd +stopped$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("status does not match %s", want)
		}
	}
}
