package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/wait"
)

const cgroupMount = "/sys/fs/cgroup"

// v1Hierarchies lists the mounted cgroup hierarchies: the v1 ones (cpu, memory,
// name=systemd...) and the controller-less cgroup2 "unified" mount of a hybrid setup, where the
// kubelet creates its tree too.
func v1Hierarchies() ([]string, error) {
	entries, err := os.ReadDir(cgroupMount)
	if err != nil {
		return nil, fmt.Errorf("listing cgroup hierarchies: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		// Symlinks (cpu -> cpu,cpuacct) would visit one hierarchy twice.
		if e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			dirs = append(dirs, filepath.Join(cgroupMount, e.Name()))
		}
	}
	return dirs, nil
}

// createCgroups makes root in every hierarchy: the kubelet refuses a cgroupRoot that does not
// exist, and creates its kubepods tree below it.
func createCgroups(root string) error {
	hs, err := v1Hierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		// cgroupfs ignores the mode; 0o755 is what the kernel shows for every cgroup anyway.
		if err := os.MkdirAll(filepath.Join(h, root), 0o755); err != nil { //nolint:gosec // see above
			return fmt.Errorf("creating cgroup %s: %w", root, err)
		}
	}
	return nil
}

// removeCgroups kills whatever still runs in root's subtree and removes it bottom-up, then
// the shared parent if no other node uses it.
func removeCgroups(ctx context.Context, root string) error {
	hs, err := v1Hierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		top := filepath.Join(h, root)
		var dirs []string
		_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Sort(sort.Reverse(sort.StringSlice(dirs))) // children before parents
		for _, d := range dirs {
			errs = append(errs, emptyAndRemove(ctx, d))
		}
		_ = os.Remove(filepath.Dir(top)) // /podsg: fails while another node lives, by design
	}
	return errors.Join(errs...)
}

func emptyAndRemove(ctx context.Context, dir string) error {
	err := wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, 10*time.Second, true, func(context.Context) (bool, error) {
		data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if errors.Is(err, os.ErrNotExist) {
			return true, nil
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		rmErr := os.Remove(dir)
		return rmErr == nil || errors.Is(rmErr, os.ErrNotExist), nil
	})
	if err != nil {
		return fmt.Errorf("removing cgroup %s: %w", dir, err)
	}
	return nil
}

// killShims SIGKILLs containerd-shim processes serving the given containerd; normally the
// CRI cleanup has ended them already.
func killShims(socket string) error {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return fmt.Errorf("listing processes: %w", err)
	}
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte("containerd-shim")) {
			continue
		}
		args := strings.Split(string(data), "\x00")
		for i := range len(args) - 1 {
			if args[i] == "-address" && args[i+1] == socket {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	return nil
}

// unmountUnder lazily unmounts every mount point below dir, deepest first: the kubelet's
// bind mount of its root dir, pod volumes, container root filesystems, pod netns files.
func unmountUnder(dir string) error {
	points, err := MountsUnder(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, mp := range points {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", mp, err))
		}
	}
	return errors.Join(errs...)
}

// MountsUnder lists the mount points at or below dir in the caller's mount namespace,
// deepest first; a path mounted several times appears once per mount.
func MountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	defer func() { _ = f.Close() }()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			points = append(points, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading mounts: %w", err)
	}
	sort.SliceStable(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ContainerLogLinks is where the kubelet links each container's log, whatever its root dir.
const containerLogLinks = "/var/log/containers"

// removeContainerLogLinks deletes the links that point into dir, and the directory itself if
// that leaves it empty (nobody else on the machine uses it then).
func removeContainerLogLinks(dir string) error {
	entries, err := os.ReadDir(containerLogLinks)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", containerLogLinks, err)
	}
	for _, e := range entries {
		p := filepath.Join(containerLogLinks, e.Name())
		if target, err := os.Readlink(p); err == nil && strings.HasPrefix(target, dir+"/") {
			if err := os.Remove(p); err != nil {
				return fmt.Errorf("removing log link: %w", err)
			}
		}
	}
	_ = os.Remove(containerLogLinks) // only succeeds when empty
	return nil
}
