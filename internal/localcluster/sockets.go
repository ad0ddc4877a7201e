package localcluster

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// socket is a bound socket of the root network namespace.
type socket struct {
	proto string // "tcp" or "udp"
	local netip.AddrPort
	inode uint64
}

// holder is a process with a socket open.
type holder struct {
	pid  int
	argv []string
}

// socketTable is who holds which local ports: the host's /proc, or a fake in tests.
type socketTable interface {
	// bound returns the listening TCP and the bound UDP sockets.
	bound() ([]socket, error)
	// holders returns, for each of these socket inodes, the processes that have it open; an
	// inode no visible process holds (another user's, without root) is absent.
	holders(inodes []uint64) (map[uint64][]holder, error)
}

// procSockets reads a proc filesystem: /proc/net/{tcp,tcp6,udp,udp6} for the sockets of the
// reader's network namespace, /proc/PID/fd for the processes that hold them.
type procSockets string

const hostSockets procSockets = "/proc"

// tcpListen is the state column of a listening socket in /proc/net/tcp: only listeners keep
// a fixed port taken (a connection's local port is ephemeral, above the ports up binds).
const tcpListen = "0A"

func (p procSockets) bound() ([]socket, error) {
	var out []socket
	for _, f := range []struct{ file, proto string }{{"tcp", "tcp"}, {"tcp6", "tcp"}, {"udp", "udp"}, {"udp6", "udp"}} {
		socks, err := readProcNet(filepath.Join(string(p), "net", f.file), f.proto)
		if err != nil {
			return nil, err
		}
		out = append(out, socks...)
	}
	return out, nil
}

func readProcNet(path, proto string) ([]socket, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil // no IPv6 in this kernel
	}
	if err != nil {
		return nil, fmt.Errorf("reading the socket table: %w", err)
	}
	defer func() { _ = f.Close() }()
	var out []socket
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		s, ok, err := parseProcNetLine(sc.Text(), proto)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if ok {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// parseProcNetLine reads "sl local rem st tx:rx tr:when retr uid timeout inode ...": ok is
// false for a TCP socket that does not listen.
func parseProcNetLine(line, proto string) (socket, bool, error) {
	f := strings.Fields(line)
	if len(f) < 10 {
		return socket{}, false, fmt.Errorf("short line %q", line)
	}
	if proto == "tcp" && f[3] != tcpListen {
		return socket{}, false, nil
	}
	local, err := parseProcNetAddr(f[1])
	if err != nil {
		return socket{}, false, err
	}
	inode, err := strconv.ParseUint(f[9], 10, 64)
	if err != nil {
		return socket{}, false, fmt.Errorf("inode %q: %w", f[9], err)
	}
	return socket{proto: proto, local: local, inode: inode}, true, nil
}

// parseProcNetAddr reads "0100007F:1F90": the address as 32-bit words the kernel prints in
// its own byte order, then the port in hex.
func parseProcNetAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("address %q: no port", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q: not 8 or 32 hex digits", s)
	}
	for i := 0; i < len(raw); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(raw[i:]))
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("address %q: port: %w", s, err)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

func (p procSockets) holders(inodes []uint64) (map[uint64][]holder, error) {
	want := map[string]uint64{}
	for _, i := range inodes {
		want[fmt.Sprintf("socket:[%d]", i)] = i
	}
	entries, err := os.ReadDir(string(p))
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	out := map[uint64][]holder{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		for _, inode := range p.socketsOf(pid, want) {
			out[inode] = append(out[inode], holder{pid: pid, argv: p.argv(pid)})
		}
	}
	return out, nil
}

// socketsOf returns the wanted inodes among pid's open files; nothing for a process that is
// gone or whose files this user may not read.
func (p procSockets) socketsOf(pid int, want map[string]uint64) []uint64 {
	dir := filepath.Join(string(p), strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	seen := map[uint64]bool{}
	var out []uint64
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := want[target]; ok && !seen[inode] {
			seen[inode] = true
			out = append(out, inode)
		}
	}
	return out
}

func (p procSockets) argv(pid int) []string {
	data, err := os.ReadFile(filepath.Join(string(p), strconv.Itoa(pid), "cmdline"))
	if s := strings.TrimRight(string(data), "\x00"); err == nil && s != "" {
		return strings.Split(s, "\x00")
	}
	return nil
}
