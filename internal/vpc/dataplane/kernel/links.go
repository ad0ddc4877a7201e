package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// end is one side of a link the data path owns.
type end struct {
	ns, name string
	mac      net.HardwareAddr
}

// ensureVeth makes a veth pair a<->b with the given MACs and MTU, both up,
// recreating it when anything differs (e.g. a different ENI now has the
// device index, or the peer is gone). It reports whether it created it.
func (s *session) ensureVeth(a, b end, mtu int) (bool, error) {
	ha, err := s.h(a.ns)
	if err != nil {
		return false, err
	}
	hb, err := s.h(b.ns)
	if err != nil {
		return false, err
	}
	la, err := linkByName(ha, a.name)
	if err != nil {
		return false, err
	}
	lb, err := linkByName(hb, b.name)
	if err != nil {
		return false, err
	}
	if vethOK(la, a, mtu) && vethOK(lb, b, mtu) && la.Attrs().ParentIndex == lb.Attrs().Index && lb.Attrs().ParentIndex == la.Attrs().Index {
		return false, nil
	}
	if err := deleteLink(ha, a.name); err != nil {
		return false, err
	}
	if err := deleteLink(hb, b.name); err != nil {
		return false, err
	}
	fdB, err := s.fd(b.ns)
	if err != nil {
		return false, err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.HardwareAddr, attrs.MTU = a.name, a.mac, mtu
	v := &netlink.Veth{LinkAttrs: attrs, PeerName: b.name, PeerHardwareAddr: b.mac, PeerNamespace: netlink.NsFd(fdB), PeerMTU: uint32(mtu)} //nolint:gosec // mtu is one of topo's MTU constants, positive and ≤ 9001
	if err := ha.LinkAdd(v); err != nil {
		return false, fmt.Errorf("creating veth %s/%s <-> %s/%s: %w", a.ns, a.name, b.ns, b.name, err)
	}
	if err := setUp(ha, a.name); err != nil {
		return false, err
	}
	return true, setUp(hb, b.name)
}

func vethOK(l netlink.Link, e end, mtu int) bool {
	return l != nil && l.Type() == "veth" && bytes.Equal(l.Attrs().HardwareAddr, e.mac) && l.Attrs().MTU == mtu && l.Attrs().Flags&net.FlagUp != 0
}

func setUp(h *netlink.Handle, name string) error {
	l, err := linkByName(h, name)
	if err != nil {
		return err
	}
	if l == nil {
		return fmt.Errorf("link %s vanished", name)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}

// vxlanSpec is the fabric end of a branch sub-interface.
type vxlanSpec struct {
	underNS, fabricNS, name string
	vni                     int
	local, remote           netip.Addr
	parent                  string // underlay link in underNS
	mtu                     int
}

// ensureVXLAN creates the device in the underlay namespace, where its UDP
// socket then stays, and moves it into the fabric: each trunk's namespace
// has its own socket, so two trunks may use the same VLAN id (the kernel
// refuses two devices with one VNI and port in a namespace).
func (s *session) ensureVXLAN(v vxlanSpec) (bool, error) {
	hu, err := s.h(v.underNS)
	if err != nil {
		return false, err
	}
	hf, err := s.h(v.fabricNS)
	if err != nil {
		return false, err
	}
	parent, err := linkByName(hu, v.parent)
	if err != nil {
		return false, err
	}
	if parent == nil {
		return false, fmt.Errorf("underlay link %s/%s missing", v.underNS, v.parent)
	}
	cur, err := linkByName(hf, v.name)
	if err != nil {
		return false, err
	}
	if vxlanOK(cur, v, parent.Attrs().Index) {
		return false, nil
	}
	if err := deleteLink(hf, v.name); err != nil {
		return false, err
	}
	if err := deleteLink(hu, v.name); err != nil {
		return false, err
	}
	if err := s.addVXLAN(hu, v, parent.Attrs().Index); err != nil {
		return false, err
	}
	return true, setUp(hf, v.name)
}

func vxlanOK(l netlink.Link, v vxlanSpec, parentIndex int) bool {
	x, ok := l.(*netlink.Vxlan)
	return ok && x.VxlanId == v.vni && x.VtepDevIndex == parentIndex &&
		x.Group.Equal(net.IP(v.remote.AsSlice())) && x.SrcAddr.Equal(net.IP(v.local.AsSlice())) && x.Flags&net.FlagUp != 0
}

// addVXLAN creates the device on the underlay link parentIndex, then moves it into the fabric.
func (s *session) addVXLAN(hu *netlink.Handle, v vxlanSpec, parentIndex int) error {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = v.name, v.mtu
	x := &netlink.Vxlan{LinkAttrs: attrs, VxlanId: v.vni, VtepDevIndex: parentIndex,
		SrcAddr: net.IP(v.local.AsSlice()), Group: net.IP(v.remote.AsSlice()), Port: portVXLAN, Learning: false}
	if err := hu.LinkAdd(x); err != nil {
		return fmt.Errorf("creating vxlan %s (vni %d) in %s: %w", v.name, v.vni, v.underNS, err)
	}
	l, err := linkByName(hu, v.name)
	if err != nil || l == nil {
		return fmt.Errorf("finding new vxlan %s: %w", v.name, err)
	}
	fd, err := s.fd(v.fabricNS)
	if err != nil {
		return err
	}
	if err := hu.LinkSetNsFd(l, fd); err != nil {
		return fmt.Errorf("moving vxlan %s into %s: %w", v.name, v.fabricNS, err)
	}
	return nil
}

// syncNeigh makes the permanent IPv4 neighbours of a link exactly want:
// the fabric knows every ENI's MAC, as EC2's mapping service does, so it
// never has to ARP towards an instance.
func syncNeigh(h *netlink.Handle, link string, want map[netip.Addr]net.HardwareAddr) error {
	l, err := linkByName(h, link)
	if err != nil || l == nil {
		return err
	}
	have, err := h.NeighList(l.Attrs().Index, unix.AF_INET)
	if err != nil {
		return fmt.Errorf("listing neighbours of %s: %w", link, err)
	}
	for _, n := range have {
		a, _ := netip.AddrFromSlice(n.IP)
		if mac, ok := want[a.Unmap()]; n.State&netlink.NUD_PERMANENT != 0 && (!ok || !bytes.Equal(mac, n.HardwareAddr)) {
			if err := h.NeighDel(&n); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("deleting neighbour %s on %s: %w", a, link, err)
			}
		}
	}
	for a, mac := range want {
		n := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: net.IP(a.AsSlice()), HardwareAddr: mac}
		if err := h.NeighSet(n); err != nil {
			return fmt.Errorf("setting neighbour %s on %s: %w", a, link, err)
		}
	}
	return nil
}
