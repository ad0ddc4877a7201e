package state

import (
	"encoding/binary"
	"net/netip"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/idgen"
)

// reservedAddresses: AWS reserves the network address, the next three (VPC
// router, DNS, future use) and the broadcast address of every subnet.
const reservedAddresses = 5

// maxIPsPerUnattachedENI bounds addresses on an ENI that no instance type
// limits yet; it is the largest per-ENI limit of any known type.
const maxIPsPerUnattachedENI = 50

func subnetSize(cidr string) int {
	p := netip.MustParsePrefix(cidr)
	return 1 << (32 - p.Bits())
}

func addrToU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u32ToAddr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// usableRange returns the first and last assignable address of a subnet.
func usableRange(cidr string) (first, last uint32) {
	p := netip.MustParsePrefix(cidr)
	base := addrToU32(p.Addr())
	size := uint32(1) << (32 - p.Bits())
	return base + 4, base + size - 2
}

func (tx *Tx) ipFree(subnetID, ip string, taken map[string]bool) bool {
	_, used := tx.m.ipOwner[subnetID][ip]
	return !used && !taken[ip]
}

// allocateIPs picks n free addresses, skipping those in taken (addresses
// already chosen in this request but not yet stored on an ENI).
func (tx *Tx) allocateIPs(s *Subnet, n int, taken map[string]bool) ([]string, error) {
	if n == 0 {
		return nil, nil
	}
	first, last := usableRange(s.CIDR)
	if tx.AvailableIPCount(s)-len(taken) < n {
		return nil, apierr.New(apierr.CodeInsufficientFreeAddresses,
			"There are not enough free addresses in subnet '%s' to satisfy the requested number of addresses.", s.ID)
	}
	cur := tx.s.ipCursor[s.ID]
	if cur < first || cur > last {
		cur = first
	}
	var out []string
	for span := last - first + 1; span > 0 && len(out) < n; span-- {
		ip := u32ToAddr(cur).String()
		if tx.ipFree(s.ID, ip, taken) {
			out = append(out, ip)
		}
		if cur++; cur > last {
			cur = first
		}
	}
	tx.s.ipCursor[s.ID] = cur
	if len(out) < n {
		return nil, apierr.New(apierr.CodeInsufficientFreeAddresses,
			"There are not enough free addresses in subnet '%s' to satisfy the requested number of addresses.", s.ID)
	}
	return out, nil
}

// checkRequestedIP validates an explicitly requested private address.
func (tx *Tx) checkRequestedIP(s *Subnet, ip string, taken map[string]bool) (string, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		return "", apierr.InvalidValue("Invalid value '%s' for privateIpAddress. It must be a valid IPv4 address.", ip)
	}
	first, last := usableRange(s.CIDR)
	if v := addrToU32(a); !netip.MustParsePrefix(s.CIDR).Contains(a) || v < first || v > last {
		return "", apierr.InvalidValue("Address %s does not fall within the subnet's address range", ip)
	}
	if !tx.ipFree(s.ID, a.String(), taken) {
		return "", apierr.New("InvalidIPAddress.InUse", "The specified address %s is already in use.", ip)
	}
	return a.String(), nil
}

func (tx *Tx) newMAC() string {
	for {
		mac := idgen.MAC(tx.s.opts.IDs)
		if _, used := tx.m.macOwner[mac]; !used {
			return mac
		}
	}
}
