package namespace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// prepareDir makes Dir a mount point with shared propagation, exactly as iproute2's
// `ip netns add` does before its first namespace (ip/ipnetns.c, netns_add), so that every tool
// that mounts namespaces there (iproute2, containerd, this package) works in the same mount.
//
// Why it matters: on a fresh machine Dir is a plain directory. iproute2, finding it so, bind-mounts
// Dir onto itself. A namespace mounted on a file in the plain directory before that bind is
// copied into the new mount but stays mounted underneath it as well, where no path reaches it: it
// can no longer be unmounted by name, its file cannot be removed (EBUSY), and the namespace lives
// on. Making the same bind first means there is only ever one mount under Dir.
func prepareDir() error {
	// The same mode as `ip netns add` gives it: iproute2 and other tools list the namespaces as any user.
	if err := os.MkdirAll(Dir, 0o755); err != nil { //nolint:gosec // a shared system directory: see above
		return fmt.Errorf("creating %s: %w", Dir, err)
	}
	err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) { // EINVAL: Dir is not a mount point yet
		return fmt.Errorf("making %s shared: %w", Dir, err)
	}
	if err := unix.Mount(Dir, Dir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mounting %s onto itself: %w", Dir, err)
	}
	if err := unix.Mount("", Dir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("making %s shared: %w", Dir, err)
	}
	return nil
}

// mountNew creates a network namespace and bind-mounts it on Dir/name. It runs on a locked
// thread that is never unlocked: unshare moves the thread into the new namespace, and the runtime
// discards a thread its goroutine leaves locked, so no other goroutine ever runs in it.
func mountNew(name string) error {
	path := filepath.Join(Dir, name)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		// 0444, as iproute2 creates it: tools list the namespaces as any user.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444) //nolint:gosec // see above
		if err != nil {
			errc <- err
			return
		}
		_ = f.Close()
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			_ = os.Remove(path)
			errc <- fmt.Errorf("bind-mounting onto %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// unmountAndRemove unmounts Dir/name and removes the file. A file that is no longer mounted
// (a delete interrupted half way) is removed all the same, and so is one whose namespace is also
// mounted where no path reaches it (see prepareDir): removeShadowed frees that one.
func unmountAndRemove(name string) error {
	path := filepath.Join(Dir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	err := unix.Unlink(path)
	switch {
	case err == nil, errors.Is(err, unix.ENOENT):
		return nil
	case errors.Is(err, unix.EBUSY):
		return removeShadowed(name)
	default:
		return fmt.Errorf("removing %s: %w", path, err)
	}
}

// removeShadowed removes Dir/name while a mount that no path reaches still sits on it. unlink(2)
// refuses a file that is a mount point in the caller's mount namespace, but once the file is
// removed the kernel detaches the mounts on it in every other mount namespace. So the removal
// happens from a private copy of the mount namespace, on a thread of its own: there, the binds of
// Dir that hide the lower mount are peeled off and the copies of the mounts on the file are
// unmounted (none of which propagates back, the copy being private), and then the unlink frees
// the original mount too. The thread is discarded afterwards (left locked), like mountNew's.
func removeShadowed(name string) error {
	dir, err := os.Open(Dir)
	if err != nil {
		return fmt.Errorf("opening %s: %w", Dir, err)
	}
	defer func() { _ = dir.Close() }()
	path := filepath.Join(Dir, name)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("unsharing the mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "none", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("making the mount namespace copy private: %w", err)
			return
		}
		// Each round removes one layer; a handful is more than any real stack of binds.
		for range 16 {
			// The directory fd names the file's directory whatever is mounted over Dir meanwhile.
			err := unix.Unlinkat(int(dir.Fd()), name, 0)
			if err == nil || errors.Is(err, unix.ENOENT) {
				errc <- nil
				return
			}
			if !errors.Is(err, unix.EBUSY) {
				errc <- fmt.Errorf("removing %s: %w", path, err)
				return
			}
			if unix.Unmount(path, unix.MNT_DETACH) == nil {
				continue
			}
			if err := unix.Unmount(Dir, unix.MNT_DETACH); err != nil {
				errc <- fmt.Errorf("removing %s: busy, and nothing left to unmount above it: %w", path, err)
				return
			}
		}
		errc <- fmt.Errorf("removing %s: still busy after unmounting 16 layers", path)
	}()
	return <-errc
}
