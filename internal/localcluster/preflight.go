package localcluster

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/podsg/podsg/internal/cluster"
)

// Ports of the control plane and podsg-controller in the root namespace. They are fixed, so
// one local cluster runs per machine; the preflight names what holds one before up starts.
const (
	controllerMetricsPort = 8480
	controllerHealthPort  = 8481
)

var controlPlanePorts = cluster.Ports{Etcd: 2379, EtcdPeer: 2380, APIServer: 6443, Scheduler: 10259, ControllerManager: 10257}

// expectedHostIP is the host ENI's address, where the API server listens:
// the first free address of the first subnet (AWS keeps .0 to .3), as a new VPC gives it.
const expectedHostIP = "10.0.0.4"

// binding is an address up binds in the root namespace. What runs inside the instances'
// namespaces (kubelet, kube-proxy, podsg-agent, the instances' metadata and VPC endpoint at
// 169.254.169.254) binds in namespaces of its own and cannot collide with the machine.
type binding struct {
	proto string
	addr  netip.AddrPort
	what  string
}

func (b binding) String() string { return fmt.Sprintf("%s/%s (%s)", b.addr, b.proto, b.what) }

// rootBindings is every fixed address up binds in the root namespace.
func rootBindings() []binding {
	lo := netip.MustParseAddr("127.0.0.1")
	host := netip.MustParseAddr(expectedHostIP)
	at := func(a netip.Addr, port int) netip.AddrPort { return netip.AddrPortFrom(a, uint16(port)) } //nolint:gosec // the fixed ports above, all below 65536
	p := controlPlanePorts
	return []binding{
		{"tcp", at(lo, APIPort), "the local VPC's EC2 API, podsg-vpc"},
		{"tcp", at(lo, p.Etcd), "etcd's clients"},
		{"tcp", at(lo, p.EtcdPeer), "etcd's peers"},
		{"tcp", at(host, p.APIServer), "kube-apiserver"},
		{"tcp", at(lo, p.Scheduler), "kube-scheduler"},
		{"tcp", at(lo, p.ControllerManager), "kube-controller-manager"},
		{"tcp", at(lo, webhookPort), "podsg-controller's webhooks"},
		{"tcp", at(lo, controllerMetricsPort), "podsg-controller's metrics"},
		{"tcp", at(lo, controllerHealthPort), "podsg-controller's health"},
	}
}

// checkPorts fails, naming every taken address, its holders and what to do, when a socket of
// the table would keep one of wants from being bound. Sockets of ours (pids of this state
// dir's own processes: a cluster up again starts only what is missing) are not in the way.
func checkPorts(table socketTable, wants []binding, ours map[int]bool) error {
	socks, err := table.bound()
	if err != nil {
		return fmt.Errorf("checking the ports up binds: %w", err)
	}
	clash := map[binding][]socket{}
	var inodes []uint64
	for _, w := range wants {
		for _, s := range socks {
			if s.proto == w.proto && collides(s.local, w.addr) {
				clash[w] = append(clash[w], s)
				inodes = append(inodes, s.inode)
			}
		}
	}
	if len(clash) == 0 {
		return nil
	}
	held, err := table.holders(inodes)
	if err != nil {
		return fmt.Errorf("checking the ports up binds: %w", err)
	}
	var errs []error
	for _, w := range wants {
		if msg := takenBy(clash[w], held, ours); msg != "" {
			errs = append(errs, fmt.Errorf("%s is taken: %s", w, msg))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("the local cluster cannot start, its fixed ports are in use:\n  %w\n"+
		"Stop what holds them. If that is a local cluster of another --state-dir (one runs per machine), "+
		"stop it with `podsg local down --state-dir DIR` (the directory it names)", joinLines(errs))
}

// takenBy describes the sockets that are in the way, "" when every one of them is ours.
func takenBy(socks []socket, held map[uint64][]holder, ours map[int]bool) string {
	var parts []string
	for _, s := range socks {
		hs := held[s.inode]
		if len(hs) == 0 {
			parts = append(parts, fmt.Sprintf("%s/%s is held by a process this user cannot see (run as root to name it)", s.local, s.proto))
			continue
		}
		if slices.ContainsFunc(hs, func(h holder) bool { return ours[h.pid] }) {
			continue
		}
		for _, h := range hs {
			parts = append(parts, fmt.Sprintf("%s/%s is held by pid %d (%s)", s.local, s.proto, h.pid, command(h)))
		}
	}
	return strings.Join(parts, "; ")
}

func command(h holder) string {
	if len(h.argv) == 0 {
		return "no command line"
	}
	return strings.Join(h.argv, " ")
}

// collides reports whether a socket bound to have keeps want's address from being bound: the
// same port, and the same address or either a wildcard (a [::] socket also takes IPv4).
func collides(have, want netip.AddrPort) bool {
	if have.Port() != want.Port() {
		return false
	}
	h, w := have.Addr().Unmap(), want.Addr().Unmap()
	if h.IsUnspecified() || w.IsUnspecified() {
		return h.Is4() == w.Is4() || have.Addr() == netip.IPv6Unspecified()
	}
	return h == w
}

func joinLines(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

// preflight checks, before up starts anything, that every fixed address it binds is free or
// held by this state dir's own processes.
func (o *Options) preflight() error {
	table := o.sockets
	if table == nil {
		table = hostSockets
	}
	running, err := cluster.ProcessesNaming(filepath.Clean(o.StateDir))
	if err != nil {
		return fmt.Errorf("checking the ports up binds: %w", err)
	}
	ours := map[int]bool{}
	for _, p := range running {
		ours[p.PID] = true
	}
	binds := o.binds
	if binds == nil {
		binds = rootBindings()
	}
	return checkPorts(table, binds, ours)
}
