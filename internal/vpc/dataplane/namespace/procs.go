package namespace

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Pids lists the processes whose network namespace is the named one. A
// deleted namespace lives on while such processes exist, so teardown
// finds and stops them before unmounting.
func Pids(name string) ([]int, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(Path(name), &st); err != nil {
		return nil, fmt.Errorf("stat netns %s: %w", name, err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing /proc: %w", err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var ps syscall.Stat_t
		if syscall.Stat("/proc/"+e.Name()+"/ns/net", &ps) != nil {
			continue
		}
		if ps.Ino == st.Ino && ps.Dev == st.Dev {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// Kill stops every process in the named namespace: SIGTERM, then SIGKILL
// for those still there after grace.
func Kill(name string, grace time.Duration) error {
	pids, err := Pids(name)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if pids, err = Pids(name); err != nil || len(pids) == 0 {
			return err
		}
		time.Sleep(20 * time.Millisecond) // polling /proc: there is no event to wait on
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return nil
}
