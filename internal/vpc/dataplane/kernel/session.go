package kernel

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
)

// session caches the netlink handles and namespace fds one convergence
// pass uses, so each namespace is opened once per Apply.
type session struct {
	handles map[string]*netlink.Handle
	fds     map[string]*os.File
}

func newSession() *session {
	return &session{handles: map[string]*netlink.Handle{}, fds: map[string]*os.File{}}
}

func (s *session) h(ns string) (*netlink.Handle, error) {
	if h, ok := s.handles[ns]; ok {
		return h, nil
	}
	h, err := namespace.Handle(ns)
	if err != nil {
		return nil, err
	}
	s.handles[ns] = h
	return h, nil
}

func (s *session) fd(ns string) (int, error) {
	if f, ok := s.fds[ns]; ok {
		return int(f.Fd()), nil
	}
	f, err := namespace.Open(ns)
	if err != nil {
		return 0, err
	}
	s.fds[ns] = f
	return int(f.Fd()), nil
}

// forget drops cached handles of a namespace about to be deleted.
func (s *session) forget(ns string) {
	if h, ok := s.handles[ns]; ok {
		h.Close()
		delete(s.handles, ns)
	}
	if f, ok := s.fds[ns]; ok {
		_ = f.Close()
		delete(s.fds, ns)
	}
}

func (s *session) close() {
	for ns := range s.handles {
		s.forget(ns)
	}
	for ns := range s.fds {
		s.forget(ns)
	}
}

// linkByName returns the link or nil when it does not exist.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up link %s: %w", name, err)
	}
	return l, nil
}

// deleteLink removes a link if present; deleting one end of a veth removes
// both, synchronously, unlike deleting its namespace.
func deleteLink(h *netlink.Handle, name string) error {
	l, err := linkByName(h, name)
	if err != nil || l == nil {
		return err
	}
	if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("deleting link %s: %w", name, err)
	}
	return nil
}

// syncAddrs makes the IPv4 addresses of a link exactly want; those also in hostScoped get
// scope host (an address of an older podsg-vpc with another scope is replaced).
func syncAddrs(h *netlink.Handle, l netlink.Link, want []netip.Prefix, hostScoped ...netip.Prefix) error {
	have, err := h.AddrList(l, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("listing addresses of %s: %w", l.Attrs().Name, err)
	}
	keep := map[netip.Prefix]bool{}
	for _, p := range want {
		keep[p] = true
	}
	present := map[netip.Prefix]bool{}
	for _, a := range have {
		p := toPrefix(a.IPNet)
		if keep[p] && (!slices.Contains(hostScoped, p) || a.Scope == int(netlink.SCOPE_HOST)) {
			present[p] = true
			continue
		}
		if err := h.AddrDel(l, &a); err != nil {
			return fmt.Errorf("removing %s from %s: %w", p, l.Attrs().Name, err)
		}
	}
	for _, p := range want {
		if present[p] {
			continue
		}
		a := &netlink.Addr{IPNet: ipNet(p)}
		if slices.Contains(hostScoped, p) {
			a.Scope = int(netlink.SCOPE_HOST)
		}
		if err := h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("adding %s to %s: %w", p, l.Attrs().Name, err)
		}
	}
	return nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func toPrefix(n *net.IPNet) netip.Prefix {
	a, _ := netip.AddrFromSlice(n.IP)
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 32) }

// derivedMAC is a stable locally-administered unicast MAC for a link the
// data path owns (the fabric ends), so a restart recreates nothing.
func derivedMAC(seed string) net.HardwareAddr {
	h := sha256.Sum256([]byte(seed))
	m := net.HardwareAddr(h[:6])
	m[0] = (m[0] | 0x02) &^ 0x01
	return m
}
