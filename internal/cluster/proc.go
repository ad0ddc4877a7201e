package cluster

import (
	"bytes"
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
	// netns is the path of the network namespace to start it in; "" is the caller's.
	netns string
	// killWithParent makes the kernel SIGKILL the process when its starter dies: right for
	// tests, wrong for `podsg local up`, whose cluster outlives the command.
	killWithParent bool
}

func (d daemon) pidFile() string { return filepath.Join(d.dir, d.name+".pid") }

// LogFile is where the process's stdout and stderr go.
func (d daemon) logFile() string { return filepath.Join(d.dir, d.name+".log") }

// running returns the pid if the pid file names a live process of the same binary (a
// recycled pid belongs to some other program and must not be signalled).
func (d daemon) running() (int, bool) {
	data, err := os.ReadFile(d.pidFile())
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, alive(pid, d.bin)
}

// alive reports whether pid is a running (not zombie) process executing bin.
func alive(pid int, bin string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself hold spaces.
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return false
	}
	want, err := filepath.EvalSymlinks(bin)
	if err != nil {
		want = bin
	}
	return strings.TrimSuffix(exe, " (deleted)") == want
}

// start launches the daemon unless it is already running, and returns its pid.
func (d daemon) start(ctx context.Context) (int, error) {
	log := logr.FromContextOrDiscard(ctx).WithValues("component", d.name)
	if pid, ok := d.running(); ok {
		log.V(1).Info("already running", "pid", pid)
		return pid, nil
	}
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return 0, fmt.Errorf("creating %s: %w", d.dir, err)
	}
	logFile, err := os.OpenFile(d.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("opening log of %s: %w", d.name, err)
	}
	defer func() { _ = logFile.Close() }()
	// Not CommandContext: the daemon must outlive ctx, which only bounds starting it.
	cmd := exec.Command(d.bin, d.args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A session of its own: no terminal signal reaches it, and Down signals the whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if d.killWithParent {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	// Pdeathsig (killWithParent) fires when the *thread* that forked the child exits, and Go
	// ends threads that a goroutine leaves locked: fork from a locked thread that also waits
	// for (and so reaps) the child, and lives as long as it does.
	started := make(chan error, 1)
	go func() {
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
	log.Info("started", "pid", pid, "log", d.logFile())
	return pid, nil
}

// stop sends SIGTERM to the daemon's process group, SIGKILL after grace, waits for it to be
// gone and removes the pid file. Stopping a daemon that is not running is not an error.
func (d daemon) stop(ctx context.Context, grace time.Duration) error {
	pid, ok := d.running()
	if ok {
		logr.FromContextOrDiscard(ctx).Info("stopping", "component", d.name, "pid", pid)
		if err := signalGroup(pid, syscall.SIGTERM); err != nil {
			return fmt.Errorf("stopping %s: %w", d.name, err)
		}
		if !waitGone(ctx, pid, d.bin, grace) {
			if err := signalGroup(pid, syscall.SIGKILL); err != nil {
				return fmt.Errorf("killing %s: %w", d.name, err)
			}
			if !waitGone(ctx, pid, d.bin, 10*time.Second) {
				return fmt.Errorf("%s (pid %d) survived SIGKILL", d.name, pid)
			}
		}
	}
	if err := os.Remove(d.pidFile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing pid file of %s: %w", d.name, err)
	}
	return nil
}

func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}

// waitGone polls /proc until the process is gone or timeout passes.
func waitGone(ctx context.Context, pid int, bin string, timeout time.Duration) bool {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return !alive(pid, bin), nil
	})
	return err == nil
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

// NewDaemon describes a daemon; netns is a namespace path, "" for the caller's.
func NewDaemon(name, dir, bin, netns string, args ...string) Daemon {
	return Daemon{daemon{name: name, dir: dir, bin: bin, args: args, netns: netns}}
}

// Start starts the daemon unless it already runs, and returns its pid.
func (d Daemon) Start(ctx context.Context) (int, error) { return d.d.start(ctx) }

// Stop stops it (SIGTERM, then SIGKILL after grace); stopping a stopped daemon is no error.
func (d Daemon) Stop(ctx context.Context, grace time.Duration) error { return d.d.stop(ctx, grace) }

// Running returns its pid when it runs.
func (d Daemon) Running() (int, bool) { return d.d.running() }

// LogFile is where its output goes.
func (d Daemon) LogFile() string { return d.d.logFile() }
