package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Process is a subprocess owned by a test. Its output goes to a log file in the test's temp
// dir; t.Cleanup stops its whole process group, so no child survives the test.
type Process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	mu      sync.Mutex
	err     error
}

// StartProcess starts bin with args and registers its teardown. A test that runs another program
// is not a unit test: StartProcess skips under PODSG_TEST_TIER=unit.
func StartProcess(t testing.TB, bin string, args ...string) (*Process, error) {
	t.Helper()
	outsideUnitTier(t, "starts "+filepath.Base(bin))
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating log for %s: %w", bin, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own lets the teardown reach grandchildren too, and Pdeathsig
	// stops the child if the test binary itself dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	started := make(chan error, 1)
	// Pdeathsig fires when the *thread* that forked the child exits, and Go ends threads that a
	// goroutine leaves locked (network namespace helpers do): fork from a thread of our own,
	// locked until the child has exited, or the child may be killed at random.
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		_ = logFile.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	if err := <-started; err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Errorf("stopping %s: %v", bin, err)
		}
	})
	return p, nil
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error once it has ended.
func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// ExitErr is nil while the process runs, and says how it ended once it has.
func (p *Process) ExitErr() error {
	if !p.Exited() {
		return nil
	}
	return fmt.Errorf("%s exited: %w", filepath.Base(p.cmd.Path), p.Err())
}

// Log returns everything the process has written so far.
func (p *Process) Log() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	return string(data)
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM to the process group, then SIGKILL after grace. Stopping an ended process
// is a no-op.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	pgid := -p.cmd.Process.Pid
	if err := syscall.Kill(pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signalling: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	if err := syscall.Kill(pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing: %w", err)
	}
	<-p.done
	return nil
}

// Kill ends the process group at once with SIGKILL, like a crash, and waits for it.
func (p *Process) Kill() {
	if !p.Exited() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// LogTail returns the last lines of the process's output, for failure messages.
func (p *Process) LogTail() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const limit = 4000
	if len(data) > limit {
		data = data[len(data)-limit:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return string(data)
}

// ListeningURL waits until the process logs a line starting with prefix and returns the rest
// of that line: servers started on port 0 announce their address this way.
func ListeningURL(t testing.TB, p *Process, prefix string) string {
	t.Helper()
	var url string
	Eventually(t, 0, func(context.Context) error {
		for _, line := range strings.Split(p.Log(), "\n") {
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
				url = u
				return nil
			}
		}
		if err := p.ExitErr(); err != nil {
			return Abort(fmt.Errorf("%w, before logging %q:\n%s", err, prefix, p.LogTail()))
		}
		return fmt.Errorf("no line %q logged yet:\n%s", prefix, p.LogTail())
	})
	return url
}
