package cluster

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/testenv"
)

// Under these names this test binary is a long-running program (TestMain): it stays until
// SIGTERM, whatever its arguments. fakeDaemonName plays a daemon, otherProgramName any other
// program (no test needs a program from the machine, such as sleep).
const (
	fakeDaemonName   = "fake-daemon"
	otherProgramName = "other-program"
)

func TestMain(m *testing.M) {
	if name := filepath.Base(os.Args[0]); name == fakeDaemonName || name == otherProgramName {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		os.Exit(0)
	}
	testenv.Main(m)
}

// fakeDaemonBin links this test binary as dir/fake-daemon: run through that path, it is a
// daemon whose /proc/PID/exe is the test binary, not the path it was started as.
func fakeDaemonBin(t *testing.T, dir string) string {
	t.Helper()
	return linkSelf(t, dir, fakeDaemonName)
}

// linkSelf links this test binary as dir/name.
func linkSelf(t *testing.T, dir, name string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// fakeProc is a proc filesystem with the given processes.
func fakeProc(t *testing.T, procs ...Process) procFS {
	t.Helper()
	root := t.TempDir()
	for _, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(p.PID))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		// comm with a space and a parenthesis, as /proc allows.
		stat := strconv.Itoa(p.PID) + " (a b) c) " + string(p.State) + " " + strconv.Itoa(p.PPID) + " " + strconv.Itoa(p.PGID) + " 0 0 -1\n"
		cmdline := strings.Join(p.Argv, "\x00")
		if cmdline != "" {
			cmdline += "\x00"
		}
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(cmdline), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return procFS(root)
}

// TestIdentity is the decision whether a process is a daemon's: by its program's name and a
// path in the daemon's home on its command line, never by where the asking podsg's copy of
// the binary lies.
func TestIdentity(t *testing.T) {
	vpc := identity{program: "podsg-vpc", home: "/var/lib/podsg/local/vpc"}
	agent := identity{program: "podsg-agent", home: "/s/agents/i-1"}
	for _, c := range []struct {
		name string
		id   identity
		p    Process
		want bool
	}{
		{"started by bin/", vpc, Process{State: 'S', Argv: []string{"/work/bin/podsg-vpc", "serve", "--state-dir", "/var/lib/podsg/local/vpc"}}, true},
		{"started from go-build, asked by bin/", vpc, Process{State: 'S', Argv: []string{"/tmp/go-build1/b001/exe/podsg-vpc", "serve", "--state-dir", "/var/lib/podsg/local/vpc"}}, true},
		{"relative argv[0]", vpc, Process{State: 'R', Argv: []string{"podsg-vpc", "serve", "--state-dir=/var/lib/podsg/local/vpc"}}, true},
		{"a path below home", agent, Process{State: 'S', Argv: []string{"/b/podsg-agent", "--socket=/s/agents/i-1/agent.sock"}}, true},
		{"zombie", vpc, Process{State: 'Z', Argv: []string{"/work/bin/podsg-vpc", "serve", "--state-dir", "/var/lib/podsg/local/vpc"}}, false},
		{"dead", vpc, Process{State: 'X', Argv: []string{"/work/bin/podsg-vpc", "serve", "--state-dir", "/var/lib/podsg/local/vpc"}}, false},
		{"recycled pid: another program on the same files", vpc, Process{State: 'S', Argv: []string{"less", "/var/lib/podsg/local/vpc/state.json"}}, false},
		{"recycled pid: same program, another state dir", vpc, Process{State: 'S', Argv: []string{"/work/bin/podsg-vpc", "serve", "--state-dir", "/tmp/x/vpc"}}, false},
		{"another node's agent whose id extends this one's", agent, Process{State: 'S', Argv: []string{"/b/podsg-agent", "--socket=/s/agents/i-10/agent.sock"}}, false},
		{"home only in the program's path", vpc, Process{State: 'S', Argv: []string{"/var/lib/podsg/local/vpc/podsg-vpc", "serve"}}, false},
		{"home inside a non-flag argument", vpc, Process{State: 'S', Argv: []string{"podsg-vpc", "x=/var/lib/podsg/local/vpc"}}, false},
		{"kernel thread", vpc, Process{State: 'S'}, false},
		{"a program whose name ends like it", vpc, Process{State: 'S', Argv: []string{"/bin/not-podsg-vpc", "/var/lib/podsg/local/vpc"}}, false},
	} {
		if got := c.id.matches(c.p); got != c.want {
			t.Errorf("%s: matches(%q) = %v, want %v", c.name, c.p.Argv, got, c.want)
		}
	}
}

// TestGone is the decision that a stopped daemon has let go of its pid: exited, a zombie, or
// the pid taken by another process; not while it is exiting, command line already gone.
func TestGone(t *testing.T) {
	vpc := identity{program: "podsg-vpc", home: "/v"}
	for _, c := range []struct {
		name string
		p    Process
		want bool
	}{
		{"running", Process{State: 'S', Argv: []string{"podsg-vpc", "--state-dir=/v"}}, false},
		{"exiting: no command line yet no zombie", Process{State: 'R'}, false},
		{"exiting, in uninterruptible sleep", Process{State: 'D'}, false},
		{"zombie", Process{State: 'Z'}, true},
		{"dead", Process{State: 'X'}, true},
		{"pid recycled by another program", Process{State: 'S', Argv: []string{"sleep", "600"}}, true},
	} {
		if got := gone(c.p, vpc); got != c.want {
			t.Errorf("%s: gone = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestMentions(t *testing.T) {
	const dir = "/var/lib/podsg/local"
	for arg, want := range map[string]bool{
		"/var/lib/podsg/local":                            true,
		"/var/lib/podsg/local/vpc":                        true,
		"--kubeconfig=/var/lib/podsg/local/kubeconfig":    true,
		"unix:///var/lib/podsg/local/nodes/i-1/ctrd.sock": true,
		"-D /var/lib/podsg/local/vpc/rds":                 true,
		"/var/lib/podsg/local2/vpc":                       false,
		"/x/var/lib/podsg/local/vpc":                      false,
		"/var/lib/podsg":                                  false,
		"/x/var/lib/podsg/local2 /var/lib/podsg/local/a":  true,
	} {
		if got := mentions(arg, dir); got != want {
			t.Errorf("mentions(%q) = %v, want %v", arg, got, want)
		}
	}
}

// TestDaemonState: what a daemon's pid file and /proc say, and how status words it.
func TestDaemonState(t *testing.T) {
	const home = "/s/vpc"
	argv := func(bin string) []string { return []string{bin, "serve", "--state-dir", home} }
	fs := fakeProc(t,
		Process{PID: 100, State: 'S', PGID: 100, Argv: argv("/work/bin/podsg-vpc")},
		Process{PID: 200, State: 'S', PGID: 200, Argv: argv("/tmp/go-build7/exe/podsg-vpc")},
		Process{PID: 300, State: 'S', PGID: 1, Argv: []string{"/usr/bin/vim", "/s/vpc/state.json"}},
		Process{PID: 400, State: 'Z', PGID: 400, Argv: nil},
		Process{PID: 500, State: 'S', PGID: 500, Argv: []string{"/work/bin/podsg-vpc", "serve", "--state-dir", "/other/vpc"}},
	)
	for _, c := range []struct {
		name, pidFile string
		fs            func(t *testing.T) procFS
		want          DaemonState
		words         string
	}{
		{"pid file names it; a second copy started elsewhere", "100\n", func(*testing.T) procFS { return fs },
			DaemonState{PID: 100, Extra: []int{200}, FilePID: 100}, "running (pid 100, another copy pid 200)"},
		{"no pid file: found by its command line", "", func(*testing.T) procFS { return fs },
			DaemonState{PID: 100, Extra: []int{200}}, "running (pid 100, another copy pid 200), its pid file is missing"},
		{"pid file of a recycled pid", "300\n", func(*testing.T) procFS { return fs },
			DaemonState{PID: 100, Extra: []int{200}, FilePID: 300, FileProc: &Process{Argv: []string{"/usr/bin/vim", "/s/vpc/state.json"}}},
			"running (pid 100, another copy pid 200), stale pid file: pid 300 is now another program (/usr/bin/vim /s/vpc/state.json)"},
		{"pid file of a zombie", "400\n", func(*testing.T) procFS { return fakeProc(t, Process{PID: 400, State: 'Z'}) },
			DaemonState{FilePID: 400}, "stopped, stale pid file: pid 400 is not running"},
		{"pid file of a dead process", "999\n", func(*testing.T) procFS { return fakeProc(t) },
			DaemonState{FilePID: 999}, "stopped, stale pid file: pid 999 is not running"},
		{"the same program for another state dir", "500\n", func(*testing.T) procFS { return fakeProc(t, fsProc(t, fs, 500)) },
			DaemonState{FilePID: 500, FileProc: &Process{Argv: []string{"/work/bin/podsg-vpc", "serve", "--state-dir", "/other/vpc"}}},
			"stopped, stale pid file: pid 500 is now another program (/work/bin/podsg-vpc serve --state-dir /other/vpc)"},
		{"garbage pid file", "{x\n", func(*testing.T) procFS { return fakeProc(t) }, DaemonState{}, "stopped"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := daemon{name: "podsg-vpc", dir: t.TempDir(), bin: "/elsewhere/podsg-vpc", home: home, proc: c.fs(t)}
			if c.pidFile != "" {
				if err := os.WriteFile(d.pidFile(), []byte(c.pidFile), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := d.state()
			if got.PID != c.want.PID || got.FilePID != c.want.FilePID || !slicesEqual(got.Extra, c.want.Extra) ||
				(got.FileProc == nil) != (c.want.FileProc == nil) || got.FileProc != nil && got.FileProc.Command() != c.want.FileProc.Command() {
				t.Errorf("state = %+v, want %+v", got, c.want)
			}
			if s := got.String(); s != c.words {
				t.Errorf("status says %q, want %q", s, c.words)
			}
		})
	}
}

// fsProc reads one process back from a fake proc filesystem.
func fsProc(t *testing.T, fs procFS, pid int) Process {
	t.Helper()
	p, ok := fs.read(pid)
	if !ok {
		t.Fatalf("no pid %d in %s", pid, fs)
	}
	return p
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDaemonLifecycle: start records a pid, a second start finds it running, stop ends it and
// removes the pid file, and a garbage pid file is not mistaken for a running daemon.
func TestDaemonLifecycle(t *testing.T) {
	dir := t.TempDir()
	d := daemon{name: "fake", dir: filepath.Join(dir, "run"), bin: fakeDaemonBin(t, filepath.Join(dir, "bin")),
		args: []string{"--home=" + dir}, home: dir, killWithParent: true}
	pid, err := d.start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d.start(t.Context()); err != nil || again != pid {
		t.Fatalf("second start = %d, %v; want %d", again, err, pid)
	}
	if err := d.stop(t.Context(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.running(); ok || exists(d.pidFile()) {
		t.Fatal("daemon still recorded as running after stop")
	}
	if err := os.WriteFile(d.pidFile(), []byte("X"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := d.running(); ok {
		t.Error("garbage pid file taken for a running daemon")
	}
	// Its arguments must name its home, or nothing could find it again.
	bad := d
	bad.args = []string{"600"}
	if _, err := bad.start(t.Context()); err == nil {
		t.Error("a daemon whose arguments do not name its home started")
	}
}

// TestDaemonFoundFromAnotherBinary is `podsg local down` run by a podsg built elsewhere: its
// daemon's binary path is not the one that started the process, and the pid file is gone
// (an older down removed it). Start finds the running process instead of starting another and
// records it again; Stop, from yet another path, ends it.
func TestDaemonFoundFromAnotherBinary(t *testing.T) {
	dir := t.TempDir()
	started := daemon{name: "fake", dir: filepath.Join(dir, "run"), bin: fakeDaemonBin(t, filepath.Join(dir, "bin")),
		args: []string{"--config", filepath.Join(dir, "config")}, home: dir, killWithParent: true}
	pid, err := started.start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	asking := started
	asking.bin = filepath.Join(t.TempDir(), "go-build", fakeDaemonName) // no such file
	if got, ok := asking.running(); !ok || got != pid {
		t.Fatalf("running() from another binary = %d, %v; want %d", got, ok, pid)
	}
	if err := os.Remove(started.pidFile()); err != nil {
		t.Fatal(err)
	}
	if s := asking.state(); s.PID != pid || s.FilePID != 0 {
		t.Fatalf("state without a pid file = %+v, want pid %d found by its command line", s, pid)
	}
	if again, err := asking.start(t.Context()); err != nil || again != pid {
		t.Fatalf("start with the daemon running = %d, %v; want %d (no second copy)", again, err, pid)
	}
	if got := asking.filePID(); got != pid {
		t.Errorf("pid file after start = %d, want %d recorded again", got, pid)
	}
	if err := asking.stop(t.Context(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if p, ok := hostProc.read(pid); ok && p.live() {
		t.Errorf("pid %d (%s) still runs after stop", pid, p.Command())
	}
	if exists(started.pidFile()) {
		t.Error("pid file of a stopped daemon kept")
	}
}

// TestDaemonLeavesRecycledPidAlone: a pid file naming a live process of another program (the
// daemon died, its pid was reused) neither counts as running nor gets that process signalled,
// and the pid file of a live process stays.
func TestDaemonLeavesRecycledPidAlone(t *testing.T) {
	dir := t.TempDir()
	other := exec.Command(linkSelf(t, filepath.Join(t.TempDir(), "other"), otherProgramName), "600")
	other.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = other.Wait(); close(exited) }()
	t.Cleanup(func() { _ = other.Process.Kill(); <-exited })
	d := daemon{name: "fake", dir: dir, bin: filepath.Join(dir, "bin", fakeDaemonName), args: []string{dir}, home: dir}
	if err := os.WriteFile(d.pidFile(), []byte(strconv.Itoa(other.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if pid, ok := d.running(); ok {
		t.Fatalf("%s (pid %d) taken for the daemon", otherProgramName, pid)
	}
	if err := d.stop(t.Context(), time.Second); err != nil {
		t.Fatal(err)
	}
	// Had stop signalled it, it would have waited for it to be gone (a zombie at least).
	if p, ok := hostProc.read(other.Process.Pid); !ok || !p.live() {
		t.Fatal("stop signalled an unrelated process that reused the daemon's pid")
	}
	if !exists(d.pidFile()) {
		t.Error("pid file of a live process removed")
	}
}

// execWindow is the host's /proc as a parent sees it while its child is still in exec: exec
// reports success (close-on-exec) before the kernel sets the new command line up, so the first
// reads of a new process show an empty one. Under load, with a large binary, that lasts.
type execWindow struct {
	mu    sync.Mutex
	reads map[int]int
}

func (w *execWindow) read(pid int) (Process, bool) {
	p, ok := hostProc.read(pid)
	return w.hide(p), ok
}

func (w *execWindow) list() ([]Process, error) {
	all, err := hostProc.list()
	for i := range all {
		all[i] = w.hide(all[i])
	}
	return all, err
}

func (w *execWindow) hide(p Process) Process {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reads[p.PID]++; w.reads[p.PID] <= 3 {
		p.Argv = nil
	}
	return p
}

// TestDaemonRecognisedOnceStarted: start returns once /proc shows the daemon's command line,
// so that the daemon passes for running right after (waitReady took a containerd still in
// exec for one that had exited).
func TestDaemonRecognisedOnceStarted(t *testing.T) {
	dir := t.TempDir()
	d := daemon{name: "fake", dir: filepath.Join(dir, "run"), bin: fakeDaemonBin(t, filepath.Join(dir, "bin")),
		args: []string{"--home=" + dir}, home: dir, killWithParent: true, proc: &execWindow{reads: map[int]int{}}}
	pid, err := d.start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if got, ok := d.running(); !ok || got != pid {
		t.Fatalf("running() = %d, %v right after start of pid %d", got, ok, pid)
	}
}

// TestDaemonEnvironment: a daemon given an environment gets exactly that one, not its
// starter's (podsg local keeps the user's AWS_ variables from its daemons this way).
func TestDaemonEnvironment(t *testing.T) {
	t.Setenv("PODSG_TEST_STARTER_ONLY", "1")
	dir := t.TempDir()
	d := NewDaemon(DaemonOptions{Name: "fake", Dir: filepath.Join(dir, "run"), Bin: fakeDaemonBin(t, filepath.Join(dir, "bin")),
		Args: []string{"--home=" + dir}, Home: dir, Env: []string{"PODSG_TEST_GIVEN=yes"}})
	pid, err := d.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(t.Context(), 5*time.Second) })
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	if env := strings.Split(strings.TrimRight(string(data), "\x00"), "\x00"); len(env) != 1 || env[0] != "PODSG_TEST_GIVEN=yes" {
		t.Errorf("daemon environment %q, want only PODSG_TEST_GIVEN=yes", env)
	}
}
