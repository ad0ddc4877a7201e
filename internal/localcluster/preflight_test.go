package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSockets is a socket table: sockets by inode and who holds them.
type fakeSockets struct {
	socks []socket
	held  map[uint64][]holder
	err   error
}

func (f fakeSockets) bound() ([]socket, error) { return f.socks, f.err }

func (f fakeSockets) holders(inodes []uint64) (map[uint64][]holder, error) {
	out := map[uint64][]holder{}
	for _, i := range inodes {
		if h, ok := f.held[i]; ok {
			out[i] = h
		}
	}
	return out, nil
}

func sock(proto, addr string, inode uint64) socket {
	return socket{proto: proto, local: netip.MustParseAddrPort(addr), inode: inode}
}

func TestCheckPorts(t *testing.T) {
	python := holder{pid: 4242, argv: []string{"python3", "-m", "http.server", "8450"}}
	dnsmasq := holder{pid: 77, argv: []string{"/usr/sbin/dnsmasq", "-k"}}
	cases := []struct {
		name  string
		table fakeSockets
		ours  map[int]bool
		want  []string // substrings of the error; none: no error
	}{
		{name: "all free", table: fakeSockets{socks: []socket{sock("tcp", "127.0.0.1:8080", 1), sock("udp", "127.0.0.53:53", 2)}}},
		{name: "loopback port taken", table: fakeSockets{socks: []socket{sock("tcp", "127.0.0.1:8450", 1)}, held: map[uint64][]holder{1: {python}}},
			want: []string{"127.0.0.1:8450/tcp (the local VPC's EC2 API, podsg-vpc) is taken", "pid 4242 (python3 -m http.server 8450)", "podsg local down --state-dir"}},
		{name: "wildcard takes the host address", table: fakeSockets{socks: []socket{sock("tcp", "0.0.0.0:6443", 5)}, held: map[uint64][]holder{5: {dnsmasq}}},
			want: []string{"10.0.0.4:6443/tcp (kube-apiserver) is taken", "0.0.0.0:6443/tcp is held by pid 77 (/usr/sbin/dnsmasq -k)"}},
		// The VPC resolver listens in the VPC's fabric namespace: the machine's own resolver is no clash.
		{name: "the machine's DNS server", table: fakeSockets{socks: []socket{sock("udp", "0.0.0.0:53", 5), sock("tcp", "0.0.0.0:53", 6)}, held: map[uint64][]holder{5: {dnsmasq}, 6: {dnsmasq}}}},
		{name: "IPv6 wildcard takes IPv4", table: fakeSockets{socks: []socket{sock("tcp", "[::]:9443", 6)}, held: map[uint64][]holder{6: {python}}},
			want: []string{"127.0.0.1:9443/tcp (podsg-controller's webhooks) is taken", "pid 4242"}},
		{name: "other protocol is no clash", table: fakeSockets{socks: []socket{sock("udp", "127.0.0.1:8450", 1)}, held: map[uint64][]holder{1: {python}}}},
		{name: "other address is no clash", table: fakeSockets{socks: []socket{sock("tcp", "127.0.0.2:2379", 1), sock("tcp", "[::1]:2379", 2)}}},
		{name: "this cluster's own daemon", table: fakeSockets{socks: []socket{sock("tcp", "10.0.0.4:6443", 9)}, held: map[uint64][]holder{9: {{pid: 900, argv: []string{"kube-apiserver"}}}}},
			ours: map[int]bool{900: true}},
		{name: "holder not visible", table: fakeSockets{socks: []socket{sock("tcp", "127.0.0.1:2380", 3)}},
			want: []string{"127.0.0.1:2380/tcp (etcd's peers) is taken", "a process this user cannot see"}},
		{name: "several taken", table: fakeSockets{socks: []socket{sock("tcp", "127.0.0.1:8480", 1), sock("tcp", "127.0.0.1:10257", 2)},
			held: map[uint64][]holder{1: {python}, 2: {dnsmasq}}},
			want: []string{"127.0.0.1:8480/tcp (podsg-controller's metrics)", "127.0.0.1:10257/tcp (kube-controller-manager)", "pid 4242", "pid 77"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPorts(tc.table, rootBindings(), tc.ours)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error naming %q, got none", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestCheckPortsTableError(t *testing.T) {
	err := checkPorts(fakeSockets{err: errors.New("boom")}, rootBindings(), nil)
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("want the table's error, got %v", err)
	}
}

func TestParseProcNetLine(t *testing.T) {
	cases := []struct {
		line, proto string
		want        string // "" is not a bound socket
	}{
		{"   0: 0100007F:2102 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0 100 0 0 10 0", "tcp", "127.0.0.1:8450"},
		{"   1: 0100007F:2102 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 31338 1 0", "tcp", ""},
		{"  12: 0400000A:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4711 2 0 0", "udp", "10.0.0.4:53"},
		{"   0: 00000000000000000000000000000000:24E3 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0", "tcp", "[::]:9443"},
		{"   0: 00000000000000000000000001000000:0951 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98 1 0", "tcp", "[::1]:2385"},
	}
	for _, tc := range cases {
		s, ok, err := parseProcNetLine(tc.line, tc.proto)
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if got := map[bool]string{true: s.local.String(), false: ""}[ok]; got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.line, got, tc.want)
		}
	}
	if _, _, err := parseProcNetLine("  0: zz:1 00:0 0A 0 0 0 0 0 1", "tcp"); err == nil {
		t.Error("a bad address parsed")
	}
}

// TestPreflightNamesThisProcess: with a port this test listens on among those up binds, up
// fails before it starts anything and names this test's own pid and command, looked up in the
// host's /proc.
func TestPreflightNamesThisProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	taken := binding{"tcp", netip.MustParseAddrPort(ln.Addr().String()), "a test's port"}
	o := fakeBinaries(t)
	o.binds = []binding{taken}
	err = Up(context.Background(), o, io.Discard)
	if err == nil {
		t.Fatalf("up saw %s free while this test listens on it", taken)
	}
	t.Logf("up says: %v", err)
	for _, w := range []string{fmt.Sprintf("%s is taken: %s/tcp is held by pid %d (%s", taken, taken.addr, os.Getpid(), os.Args[0]), "podsg local down --state-dir"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	if _, err := os.Stat(o.StateDir); !os.IsNotExist(err) {
		t.Errorf("up created %s before failing: %v", o.StateDir, err)
	}
	// The same port, as this state dir's own process (a cluster up again), is not in the way.
	if err := checkPorts(hostSockets, []binding{taken}, map[int]bool{os.Getpid(): true}); err != nil {
		t.Errorf("this cluster's own socket: %v", err)
	}
}

// fakeBinaries are Options that pass validate: empty files named as the binaries up needs,
// and a state dir that does not exist yet.
func fakeBinaries(t *testing.T) Options {
	kube, bin := t.TempDir(), t.TempDir()
	for dir, names := range map[string][]string{kube: {"kube-apiserver", "etcd", "kubelet", "kubectl", "kube-proxy", "coredns"},
		bin: {"podsg-vpc", "podsg-controller", "podsg-agent", "podsg-cni", "pgcheck"}} {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return Options{StateDir: filepath.Join(t.TempDir(), "state"), Nodes: 1, KubeBinDir: kube, BinDir: bin}
}

// TestUpFailsBeforeStartingAnything: with a port taken, up says so and has created nothing,
// not even its state dir.
func TestUpFailsBeforeStartingAnything(t *testing.T) {
	o := fakeBinaries(t)
	o.sockets = fakeSockets{socks: []socket{sock("tcp", "0.0.0.0:6443", 1)}, held: map[uint64][]holder{1: {{pid: 31, argv: []string{"kube-apiserver", "--secure-port=6443"}}}}}
	var out bytes.Buffer
	err := Up(context.Background(), o, &out)
	if err == nil || !strings.Contains(err.Error(), "10.0.0.4:6443/tcp (kube-apiserver) is taken: 0.0.0.0:6443/tcp is held by pid 31 (kube-apiserver --secure-port=6443)") {
		t.Fatalf("want the taken port named, got %v", err)
	}
	if _, err := os.Stat(o.StateDir); !os.IsNotExist(err) {
		t.Errorf("up created %s before failing: %v", o.StateDir, err)
	}
	if out.Len() != 0 {
		t.Errorf("up started steps before failing:\n%s", &out)
	}
}
