package namespace

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/testenv"
)

// childEnv names the scenario that a re-executed test binary plays inside a private mount
// namespace of its own.
const childEnv = "PODSG_NAMESPACE_TEST_SCENARIO"

// scenarios each start from a fresh machine's /run, where Dir is a plain directory, and mix this
// package with iproute2 (`ip netns`), which containerd's CNI code imitates.
var scenarios = map[string]func(t *testing.T){
	"ours, then iproute2's": func(t *testing.T) {
		create(t, "a")
		ipNetns(t, "add", "b")
		create(t, "c")
		wantListed(t, "a", "b", "c")
		remove(t, "a")
		ipNetns(t, "delete", "b")
		remove(t, "c")
	},
	"iproute2's, then ours": func(t *testing.T) {
		ipNetns(t, "add", "b")
		create(t, "a")
		wantListed(t, "a", "b")
		ipNetns(t, "delete", "b")
		remove(t, "a")
	},
	// What podsg before this package set Dir up left behind on a fresh machine: a namespace
	// mounted on the plain directory, then shadowed by iproute2's bind of Dir onto itself.
	"shadowed by iproute2's bind": func(t *testing.T) {
		if err := os.MkdirAll(Dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := mountNew("a"); err != nil {
			t.Fatal(err)
		}
		ipNetns(t, "add", "b")
		if n := nsfsMounts(t); n != 3 {
			t.Fatalf("setting up the shadowed namespace: want a mounted twice and b once, got %d nsfs mounts", n)
		}
		remove(t, "a")
		ipNetns(t, "delete", "b")
	},
	// A delete interrupted between unmount and unlink leaves a plain file behind.
	"file left unmounted": func(t *testing.T) {
		create(t, "a")
		if err := unix.Unmount(filepath.Join(Dir, "a"), unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
		remove(t, "a")
	},
}

// TestMixedWithIPRoute2OnAFreshRun plays each scenario in a child process with a private mount
// namespace and a fresh tmpfs on /run, as a machine that never ran `ip netns add` has. After each,
// `ip netns list` must be empty and quiet, and no namespace may stay mounted anywhere in the
// mount namespace, reachable or not. Whatever the child leaves dies with its mount namespace.
func TestMixedWithIPRoute2OnAFreshRun(t *testing.T) {
	if name := os.Getenv(childEnv); name != "" {
		playScenario(t, name)
		return
	}
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.IPRoute2)
	for name := range scenarios {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run", "^TestMixedWithIPRoute2OnAFreshRun$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+name)
			// Go's fork makes the new mount namespace's mounts private, as unshare(1) does.
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("scenario %q in a private mount namespace: %v\n%s", name, err, out)
			}
		})
	}
}

func playScenario(t *testing.T, name string) {
	if err := unix.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatalf("mounting a fresh /run: %v", err)
	}
	// The copy of the machine's mount table holds the namespaces other tests have mounted on the
	// machine's /run/netns, now hidden under the fresh /run: they are not the scenario's.
	for _, m := range nsfsMountIDs(t) {
		inherited[m] = true
	}
	scenarios[name](t)
	wantListed(t)
	if n := nsfsMounts(t); n != 0 {
		t.Fatalf("%d namespace mounts left under %s:\n%s", n, Dir, mountinfo(t))
	}
}

func create(t *testing.T, name string) {
	t.Helper()
	if err := Create(name); err != nil {
		t.Fatal(err)
	}
	// A real namespace of its own: loopback can be brought up in it.
	if err := Do(name, func() error { return exec.Command("ip", "link", "set", "lo", "up").Run() }); err != nil {
		t.Fatalf("using netns %s: %v", name, err)
	}
}

func remove(t *testing.T, name string) {
	t.Helper()
	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	if Exists(name) {
		t.Fatalf("netns %s still exists after Delete", name)
	}
}

func ipNetns(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// wantListed checks that `ip netns list` names exactly these namespaces and prints no error
// (such as "Peer netns reference is invalid" for a file whose namespace is gone).
func wantListed(t *testing.T, names ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ip", "netns", "list")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stderr.Len() > 0 {
		t.Fatalf("ip netns list: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var got []string
	for line := range strings.Lines(stdout.String()) {
		got = append(got, strings.Fields(line)[0])
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if len(got) != len(names) {
		t.Fatalf("ip netns list: got %v, want %v", got, names)
	}
	for _, n := range got {
		if !want[n] {
			t.Fatalf("ip netns list: got %v, want %v", got, names)
		}
	}
}

// inherited holds the ids of the namespace mounts the child's mount table started with.
var inherited = map[string]bool{}

// nsfsMounts counts the namespace mounts under Dir that the scenario made, including those that
// no path reaches any more.
func nsfsMounts(t *testing.T) int {
	t.Helper()
	n := 0
	for _, id := range nsfsMountIDs(t) {
		if !inherited[id] {
			n++
		}
	}
	return n
}

// nsfsMountIDs lists the ids of the namespace mounts under Dir in this mount namespace.
func nsfsMountIDs(t *testing.T) []string {
	t.Helper()
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(mountinfo(t)))
	for sc.Scan() {
		// mountinfo: id parent major:minor root mountpoint options ... - fstype source superopts
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if len(f) > 4 && sep > 0 && sep+1 < len(f) && f[sep+1] == "nsfs" && strings.HasPrefix(f[4], Dir+"/") {
			ids = append(ids, f[0])
		}
	}
	return ids
}

func mountinfo(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
