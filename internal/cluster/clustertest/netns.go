package clustertest

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

// Suffix returns a short random hex string, so that namespaces and interfaces of tests that run
// at the same time (or of other engineers' tests on the same machine) never collide.
func Suffix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("reading random bytes: %v", err)
	}
	return hex.EncodeToString(b)
}

// Run runs a command and fails the test with its output if it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// InNetns runs a command inside the named namespace ("" is the root namespace).
func InNetns(t testing.TB, ns, name string, args ...string) string {
	t.Helper()
	if ns == "" {
		return Run(t, name, args...)
	}
	return Run(t, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// Netns creates a named network namespace with loopback up and returns its path. Deleting it
// on cleanup also deletes every interface inside and their veth peers, and the routes via them.
func Netns(t testing.TB, name string) string {
	t.Helper()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v\n%s", name, err, out)
		}
	})
	InNetns(t, name, "ip", "link", "set", "lo", "up")
	return "/run/netns/" + name
}

// End is one side of a veth link: a namespace ("" for the root namespace), an interface name
// and an address in CIDR notation ("" for none).
type End struct {
	Netns, Name, CIDR string
}

// Veth links two namespaces and brings both ends up with their addresses. The link goes away
// with either namespace; a root-namespace end goes away with its peer's namespace.
func Veth(t testing.TB, a, b End) {
	t.Helper()
	args := []string{"link", "add", a.Name}
	if a.Netns != "" {
		args = append(args, "netns", a.Netns)
	}
	args = append(args, "type", "veth", "peer", "name", b.Name)
	if b.Netns != "" {
		args = append(args, "netns", b.Netns)
	}
	Run(t, "ip", args...)
	for _, e := range []End{a, b} {
		if e.CIDR != "" {
			InNetns(t, e.Netns, "ip", "addr", "add", e.CIDR, "dev", e.Name)
		}
		InNetns(t, e.Netns, "ip", "link", "set", e.Name, "up")
	}
}

// RouteVia reports the device `ip route get` picks for dst in the namespace ("" for root). Tests
// check it before any connection, so traffic never leaves through the machine's default route.
func RouteVia(t testing.TB, ns, dst string) string {
	t.Helper()
	out := InNetns(t, ns, "ip", "-o", "route", "get", dst)
	f := strings.Fields(out)
	for i := range len(f) - 1 {
		if f[i] == "dev" {
			return f[i+1]
		}
	}
	t.Fatalf("no device in `ip route get %s`: %s", dst, out)
	return ""
}
