package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/pginstall"
)

// Prereq is something a test needs from the machine besides root and the Kubernetes binaries:
// a command or file, and the Debian package that provides it. Every package named here is in
// hack/packages.txt, which `make test` installs (TestPrereqsAreInstalledBySetup keeps the two in
// step), so under `make test` a missing prerequisite is a broken set-up and fails the test.
type Prereq struct {
	// Package is the Debian package that provides it.
	Package string
	// Commands must be found on PATH, Files must exist.
	Commands, Files []string
	// Users must exist (a package's system user, e.g. postgres).
	Users []string
}

// The prerequisites tests name. Only these: a test needing something new adds it here and its
// package to hack/packages.txt.
var (
	IPRoute2    = Prereq{Package: "iproute2", Commands: []string{"ip"}}
	NFTables    = Prereq{Package: "nftables", Commands: []string{"nft"}}
	Conntrack   = Prereq{Package: "conntrack", Commands: []string{"conntrack"}}
	Ping        = Prereq{Package: "iputils-ping", Commands: []string{"ping"}}
	Coreutils   = Prereq{Package: "coreutils", Commands: []string{"sleep"}}
	Containerd  = Prereq{Package: "containerd", Commands: []string{"containerd", "ctr", "containerd-shim-runc-v2"}}
	Runc        = Prereq{Package: "runc", Commands: []string{"runc"}}
	CNIPlugins  = Prereq{Package: "containernetworking-plugins", Files: []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"}}
	Busybox     = Prereq{Package: "busybox-static", Files: []string{"/bin/busybox"}}
	PostgreSQL  = Prereq{Package: "postgresql", Files: []string{pginstall.Bin("initdb"), pginstall.Bin("pg_ctl"), pginstall.Bin("postgres")}, Users: []string{"postgres"}}
	PAMScript   = Prereq{Package: "libpam-script", Files: []string{"/lib/x86_64-linux-gnu/security/pam_script.so"}}
	PSQL        = Prereq{Package: "postgresql-client", Commands: []string{"psql"}}
	IPerf3      = Prereq{Package: "iperf3", Commands: []string{"iperf3"}}
	AWSCLI      = Prereq{Package: "awscli", Commands: []string{"aws"}}
	Dig         = Prereq{Package: "bind9-dnsutils", Commands: []string{"dig"}}
	GoToolchain = Prereq{Package: "", Commands: []string{"go"}} // not from Debian: make test runs under it
)

// AllPrereqs lists every prerequisite above, for the check against hack/packages.txt.
var AllPrereqs = []Prereq{IPRoute2, NFTables, Conntrack, Ping, Coreutils, Containerd, Runc, CNIPlugins, Busybox, PostgreSQL, PAMScript, PSQL, IPerf3, AWSCLI, Dig, GoToolchain}

// Missing says what of p this machine lacks, or "" when it has everything.
func (p Prereq) Missing() string {
	var miss []string
	for _, c := range p.Commands {
		if _, err := exec.LookPath(c); err != nil {
			miss = append(miss, "command "+c)
		}
	}
	for _, f := range p.Files {
		if _, err := os.Stat(f); err != nil {
			miss = append(miss, f)
		}
	}
	for _, u := range p.Users {
		if _, err := user.Lookup(u); err != nil {
			miss = append(miss, "user "+u)
		}
	}
	return strings.Join(miss, ", ")
}

// name is the Debian package, or the commands when no package provides them.
func (p Prereq) name() string {
	if p.Package != "" {
		return p.Package
	}
	return strings.Join(p.Commands, " ")
}

// Require skips the test, or fails it under `make test`, unless the machine has every prerequisite.
func Require(t testing.TB, prereqs ...Prereq) {
	t.Helper()
	var names []string
	for _, p := range prereqs {
		names = append(names, p.name())
	}
	outsideUnitTier(t, "needs "+strings.Join(names, ", ")+" from the machine")
	for _, p := range prereqs {
		if miss := p.Missing(); miss != "" {
			how := "install the Debian package " + p.Package + " (hack/setup.sh installs hack/packages.txt)"
			if p.Package == "" {
				how = "put it on PATH"
			}
			unavailable(t, fmt.Sprintf("missing %s: %s", miss, how))
		}
	}
}
