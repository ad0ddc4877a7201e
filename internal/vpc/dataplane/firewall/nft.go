package firewall

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Conn is the part of *nftables.Conn Apply and Flows use.
type Conn interface {
	AddTable(t *nftables.Table) *nftables.Table
	DelTable(t *nftables.Table)
	AddSet(s *nftables.Set, vals []nftables.SetElement) error
	AddChain(c *nftables.Chain) *nftables.Chain
	AddRule(r *nftables.Rule) *nftables.Rule
	Flush() error
	ListChainsOfTableFamily(family nftables.TableFamily) ([]*nftables.Chain, error)
	GetRules(t *nftables.Table, c *nftables.Chain) ([]*nftables.Rule, error)
}

// Dial opens an nftables connection in the namespace whose fd is given.
func Dial(nsFd int) (*nftables.Conn, error) {
	c, err := nftables.New(nftables.WithNetNSFd(nsFd), nftables.WithSockOptions(bigBuffers))
	if err != nil {
		return nil, fmt.Errorf("opening nftables: %w", err)
	}
	return c, nil
}

// bigBuffers lets a whole ruleset go in one batch: the kernel refuses a
// netlink message larger than the socket's send buffer, and a 500-ENI
// ruleset is several MB. The FORCE options (root) pass net.core.wmem_max.
func bigBuffers(c *netlink.Conn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, 64<<20); e != nil {
				serr = e
			}
		}
	}); err != nil {
		return err
	}
	return serr
}

var table = &nftables.Table{Name: Table, Family: nftables.TableFamilyIPv4}

// Apply replaces the table with rs in one transaction: the kernel switches
// from the old ruleset to the new one atomically, and connection tracking
// (kept outside the table) lets established flows carry on. Counter values
// of rules whose chain and comment survive are carried over.
func Apply(c Conn, rs *Ruleset) error {
	old, err := readCounters(c)
	if err != nil {
		return err
	}
	// Add-delete-add works whether or not the table exists yet.
	c.AddTable(table)
	c.DelTable(table)
	c.AddTable(table)
	sets := map[string]*nftables.Set{}
	for _, s := range rs.Sets {
		ns := &nftables.Set{Table: table, Name: s.Name, KeyType: nftables.TypeIPAddr}
		el := make([]nftables.SetElement, len(s.Addrs))
		for i, a := range s.Addrs {
			b := a.As4()
			el[i] = nftables.SetElement{Key: b[:]}
		}
		if err := c.AddSet(ns, el); err != nil {
			return fmt.Errorf("adding set %s: %w", s.Name, err)
		}
		sets[s.Name] = ns
	}
	chains := map[string]*nftables.Chain{}
	for _, ch := range rs.Chains {
		nc := &nftables.Chain{Name: ch.Name, Table: table}
		if ch.Hook {
			drop := nftables.ChainPolicyDrop
			nc.Type, nc.Hooknum, nc.Priority, nc.Policy = nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter, &drop
		}
		chains[ch.Name] = c.AddChain(nc)
	}
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			exprs, err := compile(r, sets, old[ch.Name+"\x00"+r.Comment])
			if err != nil {
				return fmt.Errorf("compiling rule %q in %s: %w", r.String(), ch.Name, err)
			}
			nr := &nftables.Rule{Table: table, Chain: chains[ch.Name], Exprs: exprs}
			if r.Comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
			}
			c.AddRule(nr)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("applying nftables ruleset: %w", err)
	}
	return nil
}

// Delete removes the table (a missing one is fine).
func Delete(c Conn) error {
	c.AddTable(table)
	c.DelTable(table)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("deleting nftables table: %w", err)
	}
	return nil
}

func compile(r Rule, sets map[string]*nftables.Set, cnt expr.Counter) ([]expr.Any, error) {
	var e []expr.Any
	if r.IIf != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1}, cmpEq(ifname(r.IIf)))
	}
	if r.OIf != "" {
		e = append(e, &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1}, cmpEq(ifname(r.OIf)))
	}
	ct, err := ctStateMatch(r.CTState)
	if err != nil {
		return nil, err
	}
	e = append(e, ct...)
	for _, a := range []struct {
		addr   Addr
		offset uint32
	}{{r.SAddr, 12}, {r.DAddr, 16}} {
		m, err := addrMatch(a.addr, a.offset, sets)
		if err != nil {
			return nil, err
		}
		e = append(e, m...)
	}
	if r.Proto != 0 {
		e = append(e, &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, cmpEq([]byte{r.Proto}))
	}
	e = append(e, portsMatch(r.Ports)...)
	e = append(e, icmpMatch(r)...)
	if r.Counter {
		c := cnt
		e = append(e, &c)
	}
	v, err := verdict(r.Verdict)
	if err != nil {
		return nil, err
	}
	return append(e, v), nil
}

// ctStateMatch matches any of the comma-separated conntrack states; none for "".
func ctStateMatch(states string) ([]expr.Any, error) {
	if states == "" {
		return nil, nil
	}
	var bits uint32
	for _, s := range strings.Split(states, ",") {
		switch s {
		case "established":
			bits |= expr.CtStateBitESTABLISHED
		case "related":
			bits |= expr.CtStateBitRELATED
		case "invalid":
			bits |= expr.CtStateBitINVALID
		case "new":
			bits |= expr.CtStateBitNEW
		default:
			return nil, fmt.Errorf("unknown ct state %q", s)
		}
	}
	return []expr.Any{&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)}}, nil
}

// portsMatch matches the transport header's destination port against one port or a range.
func portsMatch(ports *[2]uint16) []expr.Any {
	if ports == nil {
		return nil
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}}
	from, to := binary.BigEndian.AppendUint16(nil, ports[0]), binary.BigEndian.AppendUint16(nil, ports[1])
	if ports[0] == ports[1] {
		return append(e, cmpEq(from))
	}
	return append(e, &expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: from, ToData: to})
}

// icmpMatch matches an ICMP rule's type and, when set, its code.
func icmpMatch(r Rule) []expr.Any {
	if r.Proto != protoICMP || r.ICMPType < 0 {
		return nil
	}
	// Render takes type and code from security group rules, which package state keeps in -1..255.
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 1},
		cmpEq([]byte{byte(r.ICMPType)})} //nolint:gosec // 0..255: see above
	if r.ICMPCode >= 0 {
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 1, Len: 1},
			cmpEq([]byte{byte(r.ICMPCode)})) //nolint:gosec // 0..255: see above
	}
	return e
}

func addrMatch(a Addr, offset uint32, sets map[string]*nftables.Set) ([]expr.Any, error) {
	if a.isZero() {
		return nil, nil
	}
	e := []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4}}
	if a.Set != "" {
		s := sets[a.Set]
		if s == nil {
			return nil, fmt.Errorf("unknown set %s", a.Set)
		}
		return append(e, &expr.Lookup{SourceRegister: 1, SetName: s.Name, SetID: s.ID, Invert: a.Not}), nil
	}
	p := a.Prefix.Masked()
	if p.Bits() < 32 {
		m := ^uint32(0) << (32 - p.Bits())
		e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.BigEndian.AppendUint32(nil, m), Xor: make([]byte, 4)})
	}
	b := p.Addr().As4()
	op := expr.CmpOpEq
	if a.Not {
		op = expr.CmpOpNeq
	}
	return append(e, &expr.Cmp{Op: op, Register: 1, Data: b[:]}), nil
}

func verdict(v string) (expr.Any, error) {
	switch {
	case v == Accept:
		return &expr.Verdict{Kind: expr.VerdictAccept}, nil
	case v == Drop:
		return &expr.Verdict{Kind: expr.VerdictDrop}, nil
	case v == Return:
		return &expr.Verdict{Kind: expr.VerdictReturn}, nil
	case strings.HasPrefix(v, "jump "):
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: strings.TrimPrefix(v, "jump ")}, nil
	}
	return nil, fmt.Errorf("unknown verdict %q", v)
}

func cmpEq(b []byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }

// ifname pads an interface name the way the kernel compares it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}
