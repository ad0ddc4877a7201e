package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// processes is the process table as daemons read it: a proc filesystem, or a fake in tests.
type processes interface {
	// read returns the process with this pid, if there is one.
	read(pid int) (Process, bool)
	// list returns every process, by pid.
	list() ([]Process, error)
}

// procFS is a proc filesystem: the host's /proc, or a fake one in tests.
type procFS string

const hostProc procFS = "/proc"

// Process is a live process as /proc shows it.
type Process struct {
	PID, PPID, PGID int
	// State is the one-letter state of /proc/PID/stat: R, S, D, Z (zombie), X (dead)...
	State byte
	// Argv is the command line; empty for kernel threads.
	Argv []string
}

// Command is the command line as one string, for messages.
func (p Process) Command() string { return strings.Join(p.Argv, " ") }

// live is false for a zombie or dead process: it runs nothing any more.
func (p Process) live() bool { return p.State != 'Z' && p.State != 'X' }

func (fs procFS) read(pid int) (Process, bool) {
	dir := filepath.Join(string(fs), strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return Process{}, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so the fields
	// start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return Process{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return Process{}, false
	}
	p := Process{PID: pid, State: f[0][0]}
	p.PPID, _ = strconv.Atoi(f[1])
	p.PGID, _ = strconv.Atoi(f[2])
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return Process{}, false // gone between the two reads
	}
	if s := strings.TrimRight(string(cmdline), "\x00"); s != "" {
		p.Argv = strings.Split(s, "\x00")
	}
	return p, true
}

func (fs procFS) list() ([]Process, error) {
	entries, err := os.ReadDir(string(fs))
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if p, ok := fs.read(pid); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out, nil
}

// identity recognises a daemon's process by how it was started rather than by where its binary
// lies: argv[0]'s base name is the daemon's program, and one of its arguments is a path in the
// daemon's home directory. A podsg built elsewhere (go run, another checkout) thus finds the
// processes an earlier `up` started, while a recycled pid (another program, or the same program
// for another node or state dir) never passes.
type identity struct {
	program string // base name of the binary
	home    string // a clean path
}

func (id identity) matches(p Process) bool {
	if !p.live() || len(p.Argv) < 2 || filepath.Base(p.Argv[0]) != id.program {
		return false
	}
	for _, a := range p.Argv[1:] {
		if argIn(a, id.home) {
			return true
		}
	}
	return false
}

// argIn reports whether a command-line argument is dir or a path below it, alone or as the
// value of a --flag=value.
func argIn(arg, dir string) bool {
	if strings.HasPrefix(arg, "-") {
		if i := strings.IndexByte(arg, '='); i >= 0 {
			arg = arg[i+1:]
		}
	}
	return arg == dir || strings.HasPrefix(arg, dir+"/")
}

// mentions reports whether arg contains the absolute path dir, or a path below it, anywhere:
// -D dir/db, --endpoint=unix:///dir/sock, but not /other/dir/x or dir2.
func mentions(arg, dir string) bool {
	for i := 0; i < len(arg); {
		j := strings.Index(arg[i:], dir)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(dir)
		// Before it: nothing, a separator (=, :, space) or the slashes of a URL scheme.
		before := start == 0 || arg[start-1] == '/' || !pathChar(arg[start-1])
		after := end == len(arg) || arg[end] == '/' || !pathChar(arg[end])
		if before && after {
			return true
		}
		i = start + 1
	}
	return false
}

func pathChar(c byte) bool {
	return c == '/' || c == '.' || c == '-' || c == '_' || c == '~' ||
		c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// naming returns the live processes whose command line mentions dir, leaving out the caller
// and its ancestors (`podsg local down --state-dir dir` names it too, and so may its sudo).
func (fs procFS) naming(dir string, self int) ([]Process, error) {
	all, err := fs.list()
	if err != nil {
		return nil, err
	}
	byPID := map[int]Process{}
	for _, p := range all {
		byPID[p.PID] = p
	}
	skip := map[int]bool{}
	for pid := self; pid > 0 && !skip[pid]; pid = byPID[pid].PPID {
		skip[pid] = true
	}
	var out []Process
	for _, p := range all {
		if skip[p.PID] || !p.live() {
			continue
		}
		for _, a := range p.Argv {
			if mentions(a, dir) {
				out = append(out, p)
				break
			}
		}
	}
	return out, nil
}

// ProcessesNaming returns the live processes whose command line mentions dir (a path in it, or
// dir itself), except the caller and its ancestors: for a state dir, what still runs of it.
func ProcessesNaming(dir string) ([]Process, error) {
	return hostProc.naming(filepath.Clean(dir), os.Getpid())
}
