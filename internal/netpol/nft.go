package netpol

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// NFTTable is the nftables table (family inet) the compiled ruleset lives in.
const NFTTable = "podsg_netpol"

// LocalPod is a pod of this node and the host side of its interface, where its traffic is
// judged: packets from the pod come in on it (egress), packets to the pod go out on it
// (ingress).
type LocalPod struct {
	Pod       *Pod
	Interface string
}

// ifname is what Linux takes as an interface name, and so nft as a quoted string.
var ifname = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)

// CompileNFT renders the ruleset that enforces the evaluator's layers for the node's pods (see
// CompileNode, of which it is the form without a node's options).
func CompileNFT(e *Evaluator, u *Universe, pods []LocalPod) (string, error) {
	rs, err := CompileNode(e, u, pods, NodeOptions{})
	return rs.Script, err
}

// NodeOptions is what a node's agent adds to the compiled layers.
type NodeOptions struct {
	// PodInterfaces are nft wildcard patterns ("eni*") naming every host-side pod interface
	// of the node: a packet on one that no LocalPod names (a pod the ruleset does not know
	// yet) is dropped, so that a new pod is isolated until its rules are in place.
	PodInterfaces []string
	// NotPodInterfaces are patterns PodInterfaces would match that are no pod's veth (the
	// trunk's sub-interfaces "vlan.eth.*" next to the strict pods' "vlan*").
	NotPodInterfaces []string
	// Carry gives each named counter its starting value: what the ruleset being replaced had
	// counted, so that replacing it loses no count.
	Carry map[string]CounterValue
	// LogDenied logs every dropped packet (nft log, prefix naming the policy).
	LogDenied bool
}

// CounterValue is a named nft counter's reading.
type CounterValue struct{ Packets, Bytes uint64 }

// NodeRuleset is a compiled ruleset and what its named counters count.
type NodeRuleset struct {
	Script string
	// Counters maps each named counter of the table to the policy whose drops it counts
	// (UnknownPodPolicy for the pods not yet known).
	Counters map[string]string
}

// UnknownPodPolicy is what the counter of packets dropped for a not-yet-known pod is
// attributed to.
const UnknownPodPolicy = "(pod not yet known)"

// CounterName is the named counter of a policy's drops: stable across rulesets, so that a
// reading of the old table carries over to the new one.
func CounterName(policy string) string {
	sum := sha256.Sum256([]byte(policy))
	return "deny_" + hex.EncodeToString(sum[:6])
}

// wildcard is an nft interface pattern: a name, optionally ending in *.
var wildcard = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}\*?$`)

// CompileNode renders one nft script that replaces the table in a single transaction, so there
// is never a moment without it. The forward hook accepts established and related packets first
// (return traffic of an allowed connection), then sends a packet through the egress chains of
// the pod it comes from and the ingress chains of the pod it goes to. Each layer is a chain:
// Accept returns (this direction allows), Deny counts and drops, Pass and the end of the chain
// go to the next layer, and the end of the last layer returns (Kubernetes' default). Last, a
// packet on a pod interface that no LocalPod names is dropped (NodeOptions.PodInterfaces).
func CompileNode(e *Evaluator, u *Universe, pods []LocalPod, o NodeOptions) (NodeRuleset, error) {
	rs := NodeRuleset{Counters: map[string]string{}}
	for _, w := range append(slices.Clone(o.PodInterfaces), o.NotPodInterfaces...) {
		if !wildcard.MatchString(w) {
			return rs, fmt.Errorf("%q is not an interface name or pattern", w)
		}
	}
	var hooks, chains, known []string
	sets := &addrSets{byKey: map[string]string{}}
	u.peers = map[*podSelection][]addrBlock{}
	defer func() { u.peers = nil }()
	for i, lp := range pods {
		if !ifname.MatchString(lp.Interface) {
			return rs, fmt.Errorf("pod %s/%s: %q is not an interface name", lp.Pod.Namespace, lp.Pod.Name, lp.Interface)
		}
		if lp.Pod.HostNetwork {
			continue // no policy applies to it
		}
		known = append(known, fmt.Sprintf("%q", lp.Interface))
		for _, d := range []Direction{Egress, Ingress} {
			base := fmt.Sprintf("pod%d_%s", i, d)
			match := "oifname"
			if d == Egress {
				match = "iifname"
			}
			first, cs := e.layerChains(base, d, lp.Pod, u, o, rs.Counters, sets)
			if first == "" {
				continue // no layer has a rule for this pod and direction: allowed
			}
			hooks = append(hooks, fmt.Sprintf("%s %q jump %s comment %s", match, lp.Interface, first, comment(lp.Pod.Namespace+"/"+lp.Pod.Name+" "+string(d))))
			chains = append(chains, cs...)
		}
	}
	if len(o.PodInterfaces) > 0 {
		rs.Counters[CounterName(UnknownPodPolicy)] = UnknownPodPolicy
		hooks = append(hooks, unknownPodHooks(len(known) > 0, o)...)
	}
	rs.Script = render(hooks, chains, known, sets.defs, rs.Counters, o.Carry)
	return rs, nil
}

// unknownPodHooks drop what crosses a pod interface that no known pod owns.
func unknownPodHooks(anyKnown bool, o NodeOptions) []string {
	var hooks []string
	for _, dir := range []string{"iifname", "oifname"} {
		for _, w := range o.PodInterfaces {
			h := fmt.Sprintf("%s %q", dir, w)
			if anyKnown {
				h += fmt.Sprintf(" %s != @pod_ifs", dir)
			}
			for _, not := range o.NotPodInterfaces {
				h += fmt.Sprintf(" %s != %q", dir, not)
			}
			hooks = append(hooks, h+" "+dropStmt(UnknownPodPolicy, o)+" comment "+comment("pod not yet known"))
		}
	}
	return hooks
}

// render writes the script that replaces the table.
func render(hooks, chains, known, sets []string, counters map[string]string, carry map[string]CounterValue) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n", NFTTable, NFTTable, NFTTable)
	if len(known) > 0 {
		fmt.Fprintf(&b, "\tset pod_ifs {\n\t\ttype ifname\n\t\telements = { %s }\n\t}\n", strings.Join(known, ", "))
	}
	for _, s := range sets {
		b.WriteString(s)
	}
	for _, name := range slices.Sorted(maps.Keys(counters)) {
		c := carry[name]
		fmt.Fprintf(&b, "\tcounter %s {\n\t\tpackets %d bytes %d\n\t}\n", name, c.Packets, c.Bytes)
	}
	// kube-proxy (iptables or nftables mode) rewrites a Service's address in prerouting and
	// output at priority dstnat (-100): at priority filter (0) these chains see the backend pod.
	b.WriteString("\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n")
	b.WriteString("\t\tct state established,related accept\n\t\tct state invalid drop\n")
	for _, h := range hooks {
		b.WriteString("\t\t" + h + "\n")
	}
	b.WriteString("\t}\n")
	// The node's own traffic with its pods (the kubelet's probes, a pod calling the node)
	// does not cross the forward hook: a pod's packets to the node are judged on input, the
	// node's to a pod on output, by the same chains.
	for _, hook := range []struct{ name, dir string }{{"input", "iifname"}, {"output", "oifname"}} {
		fmt.Fprintf(&b, "\tchain %s {\n\t\ttype filter hook %s priority filter; policy accept;\n", hook.name, hook.name)
		b.WriteString("\t\tct state established,related accept\n")
		for _, h := range hooks {
			if strings.HasPrefix(h, hook.dir+" ") {
				b.WriteString("\t\t" + h + "\n")
			}
		}
		b.WriteString("\t}\n")
	}
	for _, c := range chains {
		b.WriteString(c)
	}
	b.WriteString("}\n")
	return b.String()
}

// dropStmt counts a drop against the policy (and logs it, if asked) before dropping.
func dropStmt(policy string, o NodeOptions) string {
	s := fmt.Sprintf("counter name %s", CounterName(policy))
	if o.LogDenied {
		p := "podsg-netpol deny " + policy
		if len(p) > 120 {
			p = p[:120]
		}
		s += " log prefix " + comment(p+": ")
	}
	return s + " drop"
}

// layerChains renders one chain per layer that has rules for the pod's direction (a layer
// without any passes everything to the next), and names the first; none when no layer has a
// rule.
func (e *Evaluator) layerChains(base string, d Direction, pod *Pod, u *Universe, o NodeOptions, counters map[string]string, sets *addrSets) (string, []string) {
	type layerRules struct {
		name  string
		rules []Rule
	}
	var ls []layerRules
	for _, l := range e.layers {
		if rules := l.Rules(d, pod, u); len(rules) > 0 {
			ls = append(ls, layerRules{l.Name(), rules})
		}
	}
	if len(ls) == 0 {
		return "", nil
	}
	var out []string
	for li, l := range ls {
		next := "return"
		if li+1 < len(ls) {
			next = fmt.Sprintf("goto %s_%d", base, li+1)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "\tchain %s_%d {\n\t\tcomment %s\n", base, li, comment(l.name))
		for _, r := range l.rules {
			verdict := map[Verdict]string{Accept: "return", Deny: "drop", Pass: next}[r.Verdict]
			if r.Verdict == Deny {
				counters[CounterName(r.Policy)] = r.Policy
				verdict = dropStmt(r.Policy, o)
			}
			c := comment(r.String())
			for _, expr := range ruleExprs(d, r.Matches, sets) {
				fmt.Fprintf(&b, "\t\t%s %s comment %s\n", expr, verdict, c)
			}
		}
		fmt.Fprintf(&b, "\t\t%s\n\t}\n", next)
		out = append(out, b.String())
	}
	return base + "_0", out
}

// ruleExprs renders a rule's matches as nft expressions (the rule matches if any does). The
// plain addresses of one family and port list go into one set (addrSets), so that a selector
// matching many pods is one rule, not one per pod.
func ruleExprs(d Direction, ms []Match, sets *addrSets) []string {
	type group struct {
		family string
		nets   []string
		ports  []PortRange
	}
	var out []string
	var groups []*group
	byKey := map[string]*group{}
	for _, m := range ms {
		if len(m.Except) > 0 || m.Net.Bits() == 0 {
			out = append(out, matchExprs(d, m)...)
			continue
		}
		family := "ip"
		if m.Net.Addr().Is6() {
			family = "ip6"
		}
		key := portsKey(family, m.Ports)
		g := byKey[key]
		if g == nil {
			g = &group{family: family, ports: m.Ports}
			byKey[key] = g
			groups = append(groups, g)
		}
		g.nets = append(g.nets, m.Net.String())
	}
	for _, g := range groups {
		addr := fmt.Sprintf("%s %s %s", g.family, addrField(d), g.nets[0])
		if len(g.nets) > 1 {
			addr = fmt.Sprintf("%s %s @%s", g.family, addrField(d), sets.name(g.family, g.nets))
		}
		out = append(out, portExprs(addr, g.ports)...)
	}
	return out
}

// addrSets are the named address sets of a ruleset: one per distinct list of addresses, which
// every rule that matches that list refers to. The same peers recur in the chains of every
// pod a policy selects (each of an app's pods admits the same clients): as anonymous sets,
// one kernel set per rule, nft took 0.57 s to replace a 100-pod node's table of 800 of them,
// with 10 named sets 0.11 s (BenchmarkEnforceApply, README).
type addrSets struct {
	byKey map[string]string // family and sorted elements → set name
	defs  []string
}

// name returns the set holding exactly nets (in any order, duplicates ignored), declaring it
// at first use. Sets are numbered in order of first use, so a ruleset compiled twice from the
// same state is the same text.
func (s *addrSets) name(family string, nets []string) string {
	nets = slices.Compact(slices.Sorted(slices.Values(nets)))
	key := family + " " + strings.Join(nets, ", ")
	if n, ok := s.byKey[key]; ok {
		return n
	}
	n := fmt.Sprintf("peers_%d", len(s.defs))
	s.byKey[key] = n
	typ := "ipv4_addr"
	if family == "ip6" {
		typ = "ipv6_addr"
	}
	// interval: the elements are prefixes; auto-merge: overlapping ones (an ipBlock and a pod
	// inside it) are merged, as nft does for an anonymous set, instead of refused.
	s.defs = append(s.defs, fmt.Sprintf("\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tauto-merge\n\t\telements = { %s }\n\t}\n",
		n, typ, strings.Join(nets, ", ")))
	return n
}

// portsKey names a family and port list: every address of a selected pod is a Match of its
// own, so this runs for each (fmt.Sprint here was a quarter of compiling a 100-pod node).
func portsKey(family string, ports []PortRange) string {
	var b strings.Builder
	b.WriteString(family)
	for _, p := range ports {
		b.WriteByte(' ')
		b.WriteString(string(p.Protocol))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(p.From)))
		b.WriteByte('-')
		b.WriteString(strconv.Itoa(int(p.To)))
	}
	return b.String()
}

// addrField is the peer's address: the source of what comes in, the destination of what goes
// out.
func addrField(d Direction) string {
	if d == Egress {
		return "daddr"
	}
	return "saddr"
}

// matchExprs renders a match as nft expressions, one per port range (the rule matches if any
// does).
func matchExprs(d Direction, m Match) []string {
	family, field := "ip", addrField(d)
	if m.Net.Addr().Is6() {
		family = "ip6"
	}
	addr := fmt.Sprintf("%s %s %s", family, field, m.Net)
	if m.Net.Bits() == 0 {
		addr = "meta nfproto ipv4"
		if family == "ip6" {
			addr = "meta nfproto ipv6"
		}
	}
	if len(m.Except) > 0 {
		addr += fmt.Sprintf(" %s %s != { %s }", family, field, joinPrefixes(m.Except))
	}
	return portExprs(addr, m.Ports)
}

// portExprs adds each port range to the address match.
func portExprs(addr string, ports []PortRange) []string {
	if len(ports) == 0 {
		return []string{addr}
	}
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		e := fmt.Sprintf("%s meta l4proto %s", addr, strings.ToLower(string(p.Protocol)))
		switch {
		case p.From == 0 && p.To == 0:
		case p.From == p.To:
			e += fmt.Sprintf(" th dport %d", p.From)
		default:
			e += fmt.Sprintf(" th dport %d-%d", p.From, p.To)
		}
		out = append(out, e)
	}
	return out
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// comment makes s an nft comment, quoted: safe characters only (nft's quoted strings know no
// escapes; others become _), at most 128 bytes.
func comment(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(" ._/:()[],=-", r):
			return r
		}
		return '_'
	}, s)
	if len(s) > 128 {
		s = s[:128]
	}
	return `"` + s + `"`
}
