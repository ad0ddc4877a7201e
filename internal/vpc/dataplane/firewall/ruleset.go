// Package firewall enforces security groups in a VPC fabric with
// nftables. Render is a pure function from a fabric's desired topology to
// a Ruleset; Apply installs a Ruleset in one nftables transaction,
// replacing the previous one atomically and carrying rule counters over;
// Flows reads those counters back.
package firewall

import (
	"fmt"
	"net/netip"
	"strings"
)

// Table is the nftables table (family ip) owning the fabric's rules.
const Table = "podsg"

// Verdicts.
const (
	Accept = "accept"
	Drop   = "drop"
	Return = "return"
)

// Ruleset is the whole desired content of the table.
type Ruleset struct {
	Sets   []Set
	Chains []Chain
}

// Set is a named set of IPv4 addresses.
type Set struct {
	Name  string
	Addrs []netip.Addr
}

// Chain is a chain; Hook marks the base chain on the forward hook.
type Chain struct {
	Name  string
	Hook  bool
	Rules []Rule
}

// Rule is one nftables rule in the small vocabulary security groups need.
// Zero fields do not match anything (they are left out).
type Rule struct {
	IIf, OIf string
	// CTState is "established,related" or "invalid".
	CTState string
	SAddr   Addr
	DAddr   Addr
	// Proto is the IP protocol number; 0 means any.
	Proto uint8
	// Ports is the destination port range (TCP/UDP) when set.
	Ports *[2]uint16
	// ICMPType/ICMPCode match when ≥ 0 (Proto 1).
	ICMPType, ICMPCode int
	Counter            bool
	// Verdict is Accept, Drop, Return or "jump <chain>".
	Verdict string
	// Comment names the rule for counters and Flows; unique in its chain.
	Comment string
}

// Addr matches an address by prefix or named set, optionally negated.
type Addr struct {
	Prefix netip.Prefix
	Set    string
	Not    bool
}

func (a Addr) isZero() bool { return !a.Prefix.IsValid() && a.Set == "" }

func (a Addr) String() string {
	op := ""
	if a.Not {
		op = "!= "
	}
	if a.Set != "" {
		return op + "@" + a.Set
	}
	if a.Prefix.Bits() == 32 {
		return op + a.Prefix.Addr().String()
	}
	return op + a.Prefix.String()
}

// String renders the ruleset in nft syntax, for golden tests and debugging.
func (r *Ruleset) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", Table)
	for _, s := range r.Sets {
		fmt.Fprintf(&b, "\tset %s {\n\t\ttype ipv4_addr\n", s.Name)
		if len(s.Addrs) > 0 {
			el := make([]string, len(s.Addrs))
			for i, a := range s.Addrs {
				el[i] = a.String()
			}
			fmt.Fprintf(&b, "\t\telements = { %s }\n", strings.Join(el, ", "))
		}
		b.WriteString("\t}\n")
	}
	for _, c := range r.Chains {
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.Hook {
			b.WriteString("\t\ttype filter hook forward priority filter; policy drop;\n")
		}
		for _, rule := range c.Rules {
			fmt.Fprintf(&b, "\t\t%s\n", rule.String())
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

func (r Rule) String() string {
	var p []string
	if r.IIf != "" {
		p = append(p, fmt.Sprintf("iifname %q", r.IIf))
	}
	if r.OIf != "" {
		p = append(p, fmt.Sprintf("oifname %q", r.OIf))
	}
	if r.CTState != "" {
		p = append(p, "ct state "+r.CTState)
	}
	if !r.SAddr.isZero() {
		p = append(p, "ip saddr "+r.SAddr.String())
	}
	if !r.DAddr.isZero() {
		p = append(p, "ip daddr "+r.DAddr.String())
	}
	p = append(p, r.protoStrings()...)
	if r.Counter {
		p = append(p, "counter")
	}
	p = append(p, r.Verdict)
	if r.Comment != "" {
		p = append(p, fmt.Sprintf("comment %q", r.Comment))
	}
	return strings.Join(p, " ")
}

// protoStrings renders the protocol match: ICMP type and code, or the protocol number
// followed by the destination ports.
func (r Rule) protoStrings() []string {
	var p []string
	switch {
	case r.Proto == protoICMP && (r.ICMPType >= 0 || r.ICMPCode >= 0):
		p = append(p, "ip protocol icmp")
		if r.ICMPType >= 0 {
			p = append(p, fmt.Sprintf("icmp type %d", r.ICMPType))
		}
		if r.ICMPCode >= 0 {
			p = append(p, fmt.Sprintf("icmp code %d", r.ICMPCode))
		}
	case r.Proto != 0:
		p = append(p, fmt.Sprintf("ip protocol %d", r.Proto))
	}
	if r.Ports != nil {
		if r.Ports[0] == r.Ports[1] {
			p = append(p, fmt.Sprintf("th dport %d", r.Ports[0]))
		} else {
			p = append(p, fmt.Sprintf("th dport %d-%d", r.Ports[0], r.Ports[1]))
		}
	}
	return p
}
