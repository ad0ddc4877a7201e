package kernel

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/vpc/dataplane/firewall"
)

// On EC2 the metadata service sits outside the instance: its token reply
// (IP TTL = HttpPutResponseHopLimit) reaches the instance's ENI, and the
// instance forwards it, taking one from the TTL, to a container behind it.
// Here the service's socket is inside the instance's namespace, so its
// replies to a pod are sent, not forwarded, and the kernel takes nothing
// from their TTL. The table below makes the instance forward them as a
// router would: a metadata reply leaving through any link but lo (so going
// to a client behind the instance, not to the instance itself) with TTL 1
// is dropped, and any other has its TTL decremented. Further hops are real
// routers (a pod's own namespaces) and count themselves.
const (
	hopTable    = "podsg-imds-hop"
	hopChain    = "output"
	hopMap      = "ttl"
	hopDropNote = "podsg: metadata reply with no hop left"
	hopDecNote  = "podsg: metadata reply forwarded by the instance"
)

var hopTableRef = &nftables.Table{Name: hopTable, Family: nftables.TableFamilyIPv4}

// ensureIMDSHop installs the table in an instance namespace unless it is
// there already (one netlink dump per instance and Apply; replacing the
// table on every Apply would cost a ruleset commit each).
func (d *Dataplane) ensureIMDSHop(s *session, ns string) error {
	fd, err := s.fd(ns)
	if err != nil {
		return err
	}
	c, err := firewall.Dial(fd)
	if err != nil {
		return err
	}
	chain := &nftables.Chain{Name: hopChain, Table: hopTableRef}
	if rules, err := c.GetRules(hopTableRef, chain); err == nil && hopRulesPresent(rules) {
		return nil
	}
	// Add-delete-add replaces whatever is there, in one transaction.
	c.AddTable(hopTableRef)
	c.DelTable(hopTableRef)
	c.AddTable(hopTableRef)
	accept := nftables.ChainPolicyAccept
	chain = c.AddChain(&nftables.Chain{Name: hopChain, Table: hopTableRef, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	// The map takes the TTL and protocol bytes of the IPv4 header (TCP's
	// 6 is part of the key) to the same with the TTL one less: rewriting
	// two bytes keeps the header checksum update 16-bit aligned, as nft does.
	set := &nftables.Set{Table: hopTableRef, Name: hopMap, IsMap: true, KeyType: nftables.TypeInetService, DataType: nftables.TypeInetService}
	var elems []nftables.SetElement
	for ttl := 2; ttl <= 255; ttl++ {
		elems = append(elems, nftables.SetElement{Key: []byte{byte(ttl), unix.IPPROTO_TCP}, Val: []byte{byte(ttl - 1), unix.IPPROTO_TCP}})
	}
	if err := c.AddSet(set, elems); err != nil {
		return fmt.Errorf("adding the metadata hop map in %s: %w", ns, err)
	}
	drop := append(metadataReply(),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{1}},
		&expr.Verdict{Kind: expr.VerdictDrop})
	dec := append(metadataReply(),
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 2},
		&expr.Lookup{SourceRegister: 1, DestRegister: 1, IsDestRegSet: true, SetName: hopMap, SetID: set.ID},
		&expr.Payload{OperationType: expr.PayloadWrite, SourceRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 2,
			CsumType: expr.CsumTypeInet, CsumOffset: 10})
	for _, r := range []struct {
		exprs []expr.Any
		note  string
	}{{drop, hopDropNote}, {dec, hopDecNote}} {
		c.AddRule(&nftables.Rule{Table: hopTableRef, Chain: chain, Exprs: r.exprs,
			UserData: userdata.AppendString(nil, userdata.TypeComment, r.note)})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing the metadata hop table in %s: %w", ns, err)
	}
	return nil
}

// metadataReply matches a TCP packet from IMDSAddr:80 leaving through a
// link other than lo.
func metadataReply() []expr.Any {
	lo := make([]byte, unix.IFNAMSIZ)
	copy(lo, "lo")
	addr := IMDSAddr.As4()
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, 80)
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: lo},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 0, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: port},
	}
}

// hopRulesPresent reports whether the chain holds exactly the two rules.
func hopRulesPresent(rules []*nftables.Rule) bool {
	if len(rules) != 2 {
		return false
	}
	for i, want := range []string{hopDropNote, hopDecNote} {
		if got, _ := userdata.GetString(rules[i].UserData, userdata.TypeComment); got != want {
			return false
		}
	}
	return true
}
