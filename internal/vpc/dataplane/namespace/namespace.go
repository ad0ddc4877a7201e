// Package namespace creates, enters and deletes the named network
// namespaces of the local VPC data path (bind mounts under /run/netns, the
// same place `ip netns` uses, so operators can inspect them).
package namespace

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	cnins "github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Dir is where named namespaces are bind-mounted.
const Dir = "/run/netns"

// rootNS holds the namespace the process started in, opened before any
// goroutine could switch a thread elsewhere (package init runs on the main
// goroutine first). /proc/1/ns/net may be unreadable (another user
// namespace, a restricted /proc), and /proc/self follows whatever thread
// leads the process.
var rootNS, rootErr = os.Open("/proc/thread-self/ns/net")

// Path is the bind-mount path of a named namespace; "" is the namespace
// this process started in (the "root" one), never created nor deleted.
func Path(name string) string {
	if name == "" {
		if rootErr != nil {
			return "/proc/self/ns/net"
		}
		return fmt.Sprintf("/proc/self/fd/%d", rootNS.Fd())
	}
	return filepath.Join(Dir, name)
}

// ConfigDir is where `ip netns exec NAME` finds the namespace's own configuration: iproute2
// bind-mounts every file of /etc/netns/NAME over its namesake in /etc (resolv.conf above all).
func ConfigDir(name string) string { return filepath.Join("/etc/netns", name) }

// Exists reports whether the named namespace is mounted.
func Exists(name string) bool {
	if name == "" {
		return true
	}
	_, err := os.Stat(Path(name))
	return err == nil
}

// Create makes the named namespace if it does not exist yet.
func Create(name string) error {
	if Exists(name) {
		return nil
	}
	if err := prepareDir(); err != nil {
		return fmt.Errorf("creating netns %s: %w", name, err)
	}
	if err := mountNew(name); err != nil {
		return fmt.Errorf("creating netns %s: %w", name, err)
	}
	return nil
}

// Delete unmounts and removes the named namespace; a missing one is fine, and so is a file
// left unmounted or a namespace also mounted out of reach (unmountAndRemove). The kernel destroys
// the namespace (and its devices) once nothing else references it, asynchronously: callers that
// need a device gone at once delete it explicitly first.
func Delete(name string) error {
	if name == "" {
		return errors.New("refusing to delete the root namespace")
	}
	if !Exists(name) {
		return nil
	}
	if err := unmountAndRemove(name); err != nil {
		return fmt.Errorf("deleting netns %s: %w", name, err)
	}
	return nil
}

// List returns the named namespaces whose name starts with prefix.
func List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", Dir, err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Do runs fn on a thread switched into the named namespace. Goroutines fn
// starts do not inherit the namespace (see containernetworking/plugins
// pkg/ns README); sockets opened inside fn stay in it.
func Do(name string, fn func() error) error {
	return cnins.WithNetNSPath(Path(name), func(cnins.NetNS) error { return fn() })
}

// Handle returns a netlink handle bound to the named namespace, which needs
// no thread switching.
func Handle(name string) (*netlink.Handle, error) {
	h, err := netns.GetFromPath(Path(name))
	if err != nil {
		return nil, fmt.Errorf("opening netns %s: %w", name, err)
	}
	defer func() { _ = h.Close() }()
	nh, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return nh, nil
}

// Open returns an fd of the namespace (for nftables.WithNetNSFd and
// netlink.NsFd); the caller closes it.
func Open(name string) (*os.File, error) {
	f, err := os.Open(Path(name))
	if err != nil {
		return nil, fmt.Errorf("opening netns %s: %w", name, err)
	}
	return f, nil
}

// Start starts cmd inside the named namespace. The child is forked from a
// thread that is in the namespace, so it inherits it; the command keeps the
// caller's mount namespace, unlike `ip netns exec`.
func Start(name string, cmd *exec.Cmd) error {
	return Do(name, cmd.Start)
}

// Sysctl writes /proc/sys/<key> (dots as separators) inside the namespace.
func Sysctl(name string, kv ...string) error {
	return Do(name, func() error {
		for i := 0; i+1 < len(kv); i += 2 {
			p := filepath.Join("/proc/sys", strings.ReplaceAll(kv[i], ".", "/"))
			if err := os.WriteFile(p, []byte(kv[i+1]), 0o644); err != nil {
				return fmt.Errorf("setting sysctl %s: %w", kv[i], err)
			}
		}
		return nil
	})
}
