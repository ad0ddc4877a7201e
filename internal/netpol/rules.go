package netpol

import (
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Universe is everything a node knows to resolve selectors into addresses: the pods (of
// every node) and the nodes.
type Universe struct {
	Pods  []*Pod
	Nodes []*Node

	// peers caches podBlocks while CompileNode runs (nil otherwise: the universe may change
	// between evaluations): a node's chains resolve the same selectors for every local pod a
	// policy selects, and matching them against every pod each time was nearly half a
	// compile.
	peers map[*podSelection][]addrBlock
}

// Rule is one layer's rule for one pod and direction, resolved to addresses and ports: the
// form a data path enforces. A rule applies its verdict to the traffic any of its matches
// covers; Pass hands the traffic to the next layer.
type Rule struct {
	Verdict      Verdict
	Policy, Name string
	Matches      []Match
}

// Match covers the traffic with the peer in Net but not in Except, on any of Ports (none:
// every protocol, ICMP included).
type Match struct {
	Net    netip.Prefix
	Except []netip.Prefix
	Ports  []PortRange
}

// PortRange is a protocol's destination ports From..To; 0..0 is all of its ports.
type PortRange struct {
	Protocol corev1.Protocol
	From, To int32
}

// everywhere is the peer "anyone": every IPv4 and IPv6 address.
var everywhere = []addrBlock{{net: netip.MustParsePrefix("0.0.0.0/0")}, {net: netip.MustParsePrefix("::/0")}}

// addrBlock is the addresses a peer covers; a pod peer is a /32 (or /128) per address.
type addrBlock struct {
	net    netip.Prefix
	except []netip.Prefix
}

func (b addrBlock) contains(a netip.Addr) bool {
	return ipBlock{cidr: b.net, except: b.except}.contains(a)
}

// portSpec is a rule's port before resolution: a range (0..0 all ports), or a named port
// (of proto, or of any protocol when proto is "").
type portSpec struct {
	proto    corev1.Protocol
	from, to int32
	named    string
}

// podBlocks are the addresses of the pods sel matches.
func podBlocks(sel *podSelection, u *Universe) []addrBlock {
	if cached, ok := u.peers[sel]; ok {
		return slices.Clip(cached) // a caller that appends gets a copy
	}
	var out []addrBlock
	defer func() {
		if u.peers != nil {
			u.peers[sel] = out
		}
	}()
	for _, p := range u.Pods {
		if sel.matches(p.policyPodOrNil()) {
			for _, ip := range p.IPs {
				out = append(out, addrBlock{net: netip.PrefixFrom(ip, ip.BitLen())})
			}
		}
	}
	return out
}

func (p *Pod) policyPodOrNil() *Pod { return Endpoint{Pod: p}.policyPod() }

// resolve turns peers and ports into matches. A named port is the destination's: for
// ingress the subject's own port, for egress each destination pod's within the peers (so an
// address that is no pod's matches no named port).
func resolve(d Direction, subject *Pod, blocks []addrBlock, ports []portSpec, u *Universe) []Match {
	if len(ports) == 0 {
		return blocksMatch(blocks, nil)
	}
	var numeric []PortRange
	var named []portSpec
	for _, p := range ports {
		switch {
		case p.named == "":
			numeric = append(numeric, PortRange{Protocol: p.proto, From: p.from, To: p.to})
		case d == Ingress:
			numeric = append(numeric, namedPorts(subject, p)...)
		default:
			named = append(named, p)
		}
	}
	var out []Match
	if len(numeric) > 0 {
		out = blocksMatch(blocks, numeric)
	}
	for _, p := range named {
		for _, dst := range u.Pods {
			for _, ip := range dst.policyPodIPs() {
				if inAny(blocks, ip) {
					if pr := namedPorts(dst, p); len(pr) > 0 {
						out = append(out, Match{Net: netip.PrefixFrom(ip, ip.BitLen()), Ports: pr})
					}
				}
			}
		}
	}
	return out
}

func blocksMatch(blocks []addrBlock, ports []PortRange) []Match {
	out := make([]Match, 0, len(blocks))
	for _, b := range blocks {
		out = append(out, Match{Net: b.net, Except: b.except, Ports: ports})
	}
	return out
}

func inAny(blocks []addrBlock, ip netip.Addr) bool {
	for _, b := range blocks {
		if b.contains(ip) {
			return true
		}
	}
	return false
}

func (p *Pod) policyPodIPs() []netip.Addr {
	if p.HostNetwork {
		return nil
	}
	return p.IPs
}

// namedPorts are the pod's ports of that name and protocol, as ranges of one.
func namedPorts(pod *Pod, p portSpec) []PortRange {
	var out []PortRange
	for _, cp := range pod.Ports {
		if cp.Name == p.named && (p.proto == "" || cpProtocol(cp) == p.proto) {
			out = append(out, PortRange{Protocol: cpProtocol(cp), From: cp.ContainerPort, To: cp.ContainerPort})
		}
	}
	return out
}

func cpProtocol(cp corev1.ContainerPort) corev1.Protocol {
	if cp.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return cp.Protocol
}
