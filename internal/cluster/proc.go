package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
)

// daemon is a long-running process recorded by a pid file, so that a later `Up` finds it
// still running and a later `Down` can stop it without having started it.
type daemon struct {
	name string // base name of the pid and log files
	dir  string // where they live
	bin  string
	args []string
	// home is a directory that one of args names: with bin's base name it identifies the
	// daemon's process in /proc (see identity), whatever path bin has in the asking podsg.
	home string
	// netns is the path of the network namespace to start it in; "" is the caller's.
	netns string
	// mountNSHolder, when set, is the daemon whose mount namespace it starts in (see
	// mountns.go); nil is the caller's. newMountNS starts it in a new one: it is a holder.
	mountNSHolder *daemon
	newMountNS    bool
	// env is the process's environment; nil inherits the caller's.
	env []string
	// killWithParent makes the kernel SIGKILL the process when its starter dies: right for
	// tests, wrong for `podsg local up`, whose cluster outlives the command.
	killWithParent bool
	proc           processes // nil is the host's /proc
}

func (d daemon) pidFile() string { return filepath.Join(d.dir, d.name+".pid") }

// LogFile is where the process's stdout and stderr go.
func (d daemon) logFile() string { return filepath.Join(d.dir, d.name+".log") }

func (d daemon) procs() processes {
	if d.proc == nil {
		return hostProc
	}
	return d.proc
}

func (d daemon) identity() identity {
	return identity{program: filepath.Base(d.bin), home: filepath.Clean(d.home)}
}

// DaemonState is what /proc says about a daemon and its pid file.
type DaemonState struct {
	// PID is the daemon's live process (the pid file's, else one found by its command line), 0
	// when it does not run; Extra are further copies of it.
	PID   int
	Extra []int
	// FilePID is the pid its pid file names, 0 without a readable one. When it is not PID,
	// FileProc is what runs under that pid now, if anything: a recycled pid.
	FilePID  int
	FileProc *Process
}

// Running reports whether the daemon has a live process.
func (s DaemonState) Running() bool { return s.PID != 0 }

func (s DaemonState) String() string {
	var b strings.Builder
	if s.PID != 0 {
		fmt.Fprintf(&b, "running (pid %d", s.PID)
		for _, p := range s.Extra {
			fmt.Fprintf(&b, ", another copy pid %d", p)
		}
		b.WriteString(")")
	} else {
		b.WriteString("stopped")
	}
	switch {
	case s.FilePID == s.PID:
	case s.FilePID == 0:
		b.WriteString(", its pid file is missing")
	case s.FileProc != nil:
		fmt.Fprintf(&b, ", stale pid file: pid %d is now another program (%s)", s.FilePID, s.FileProc.Command())
	default:
		fmt.Fprintf(&b, ", stale pid file: pid %d is not running", s.FilePID)
	}
	return b.String()
}

// filePID reads the pid file; 0 if there is none or it holds no pid.
func (d daemon) filePID() int {
	data, err := os.ReadFile(d.pidFile())
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// state finds the daemon's process: the one its pid file names if that is the daemon, and any
// other process with its identity (its pid file lost, e.g. to an older podsg's down).
func (d daemon) state() DaemonState {
	id, fs := d.identity(), d.procs()
	s := DaemonState{FilePID: d.filePID()}
	if s.FilePID != 0 {
		p, ok := fs.read(s.FilePID)
		switch {
		case ok && id.matches(p):
			s.PID = p.PID
		case ok && p.live():
			s.FileProc = &p
		}
	}
	all, _ := fs.list() // unreadable /proc: the pid file's answer is all there is
	for _, p := range all {
		if p.PID == s.PID || !id.matches(p) {
			continue
		}
		if s.PID == 0 {
			s.PID = p.PID
		} else {
			s.Extra = append(s.Extra, p.PID)
		}
	}
	return s
}

// running returns the pid of the daemon's process, if it has one.
func (d daemon) running() (int, bool) {
	// The pid file answers without a scan of /proc in the usual case (waitReady polls this).
	if pid := d.filePID(); pid != 0 {
		if p, ok := d.procs().read(pid); ok && d.identity().matches(p) {
			return pid, true
		}
	}
	s := d.state()
	return s.PID, s.PID != 0
}

// start launches the daemon unless it is already running, and returns its pid.
func (d daemon) start(ctx context.Context) (int, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("component", d.name)
	if self := (Process{State: 'R', Argv: append([]string{d.bin}, d.args...)}); !d.identity().matches(self) {
		// Without it, no later podsg could tell its process from a recycled pid.
		return 0, fmt.Errorf("daemon %s: no argument names %s", d.name, d.home)
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return 0, fmt.Errorf("creating %s: %w", d.dir, err)
	}
	if s := d.state(); s.Running() {
		log.V(1).Info("already running", "pid", s.PID)
		if s.FilePID != s.PID { // found by its command line: record it again
			if err := os.WriteFile(d.pidFile(), []byte(strconv.Itoa(s.PID)+"\n"), 0o600); err != nil {
				return 0, fmt.Errorf("writing pid file of %s: %w", d.name, err)
			}
		}
		return s.PID, nil
	}
	logFile, err := os.OpenFile(d.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening log of %s: %w", d.name, err)
	}
	defer func() { _ = logFile.Close() }()
	// Not CommandContext: the daemon must outlive ctx, which only bounds starting it.
	bin, args, err := d.wrapped()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = d.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own: no terminal signal reaches it, and Down signals the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if d.killWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	// Pdeathsig (killWithParent) fires when the *thread* that forked the child exits, and Go
	// ends threads that a goroutine leaves locked: fork from a locked thread that also waits
	// for (and so reaps) the child, and lives as long as it does.
	started, exited := make(chan error, 1), make(chan struct{})
	go func() {
		defer close(exited)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if d.netns == "" {
			started <- cmd.Start()
		} else {
			// The child inherits the network namespace of the thread that forks it.
			started <- ns.WithNetNSPath(d.netns, func(ns.NetNS) error { return cmd.Start() })
		}
		if cmd.Process != nil {
			_ = cmd.Wait() // reap it, so that it does not linger as a zombie
		}
	}()
	if err := <-started; err != nil {
		return 0, fmt.Errorf("starting %s: %w", d.name, err)
	}
	pid := cmd.Process.Pid
	if err := os.WriteFile(d.pidFile(), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return 0, fmt.Errorf("writing pid file of %s: %w", d.name, err)
	}
	if err := d.waitRecognisable(ctx, pid, exited); err != nil {
		return 0, err
	}
	log.Info("started", "pid", pid, "log", d.logFile())
	return pid, nil
}

// waitRecognisable waits until /proc shows pid with the daemon's command line. Exec reports
// success to the parent before the kernel has set the new command line up (close-on-exec
// comes first), and until then the process would not pass for the daemon: waitReady would
// take it for dead.
func (d daemon) waitRecognisable(ctx context.Context, pid int, exited <-chan struct{}) error {
	id := d.identity()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		if p, ok := d.procs().read(pid); ok && id.matches(p) {
			return true, nil
		}
		select {
		case <-exited:
			_ = os.Remove(d.pidFile())
			return false, fmt.Errorf("%s exited at once:\n%s", d.name, d.logTail())
		default:
			return false, nil
		}
	})
	if err != nil {
		return fmt.Errorf("waiting for %s (pid %d) to run: %w", d.name, pid, err)
	}
	return nil
}

// stop sends SIGTERM to the daemon's process group (to every copy of it that runs), SIGKILL
// after grace, and waits for it to be gone. The pid file goes only when no process has its pid
// any more: a survivor keeps its record. Stopping a daemon that is not running is not an error.
func (d daemon) stop(ctx context.Context, grace time.Duration) error {
	s := d.state()
	var errs []error
	if s.Running() {
		for _, pid := range append([]int{s.PID}, s.Extra...) {
			logr.FromContextOrDiscard(ctx).Info("stopping", "component", d.name, "pid", pid)
			errs = append(errs, d.stopProcess(ctx, pid, grace))
		}
	}
	if s.FilePID != 0 {
		if p, ok := d.procs().read(s.FilePID); ok && p.live() {
			return errors.Join(errs...) // ours and still there (an error says so), or a recycled pid
		}
	}
	if err := os.Remove(d.pidFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("removing pid file of %s: %w", d.name, err))
	}
	return errors.Join(errs...)
}

func (d daemon) stopProcess(ctx context.Context, pid int, grace time.Duration) error {
	if err := d.signal(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping %s (pid %d): %w", d.name, pid, err)
	}
	if d.waitGone(ctx, pid, grace) {
		return nil
	}
	if err := d.signal(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing %s (pid %d): %w", d.name, pid, err)
	}
	if !d.waitGone(ctx, pid, 10*time.Second) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", d.name, pid)
	}
	return nil
}

// signal sends sig to the process group the daemon leads (start gives it a session of its
// own, so its children go too), or to the process alone if it leads none.
func (d daemon) signal(pid int, sig syscall.Signal) error {
	p, ok := d.procs().read(pid)
	if !ok {
		return nil
	}
	target := pid
	if p.PGID == pid {
		target = -pid
	}
	if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// waitGone polls /proc until pid is no longer the daemon (exited, a zombie, or recycled) or
// timeout passes.
func (d daemon) waitGone(ctx context.Context, pid int, timeout time.Duration) bool {
	id := d.identity()
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		p, ok := d.procs().read(pid)
		return !ok || gone(p, id), nil
	})
	return err == nil
}

// gone reports whether p is no longer the daemon. A process in the middle of exiting has
// already lost its command line but is not a zombie yet: it is still the daemon (and still
// holds its pid), so it is not gone.
func gone(p Process, id identity) bool {
	if !p.live() {
		return true
	}
	return len(p.Argv) > 0 && !id.matches(p)
}

// logTail returns the end of a daemon's log, for error messages.
func (d daemon) logTail() string {
	data, err := os.ReadFile(d.logFile())
	if err != nil {
		return ""
	}
	const limit = 3000
	if len(data) > limit {
		data = data[len(data)-limit:]
	}
	return string(data)
}

// Daemon is a long-running process tracked by a pid file in Dir, started detached (it outlives
// the command that starts it) and optionally inside a network namespace: `podsg local` runs the
// local VPC, podsg-controller and the node agents this way.
type Daemon struct{ d daemon }

// DaemonOptions describe a daemon.
type DaemonOptions struct {
	// Name is the base name of its pid and log files, in Dir.
	Name, Dir string
	Bin       string
	Args      []string
	// Home is a directory that one of Args names (alone or as --flag=value). With Bin's base
	// name it identifies the daemon's process, so that a podsg whose Bin lies elsewhere still
	// finds and stops it, and a recycled pid is never taken for it.
	Home string
	// Netns is a namespace path to start it in, "" for the caller's.
	Netns string
	// Env is its environment; nil inherits the caller's.
	Env []string
}

// NewDaemon describes a daemon; it starts nothing.
func NewDaemon(o DaemonOptions) Daemon {
	return Daemon{daemon{name: o.Name, dir: o.Dir, bin: o.Bin, args: o.Args, home: o.Home, netns: o.Netns, env: o.Env}}
}

// Name is its pid file's base name.
func (d Daemon) Name() string { return d.d.name }

// Start starts the daemon unless it already runs, and returns its pid.
func (d Daemon) Start(ctx context.Context) (int, error) { return d.d.start(ctx) }

// Stop stops it (SIGTERM, then SIGKILL after grace); stopping a stopped daemon is no error.
func (d Daemon) Stop(ctx context.Context, grace time.Duration) error { return d.d.stop(ctx, grace) }

// Running returns its pid when it runs.
func (d Daemon) Running() (int, bool) { return d.d.running() }

// State says what runs of it and what its pid file says.
func (d Daemon) State() DaemonState { return d.d.state() }

// LogFile is where its output goes.
func (d Daemon) LogFile() string { return d.d.logFile() }
