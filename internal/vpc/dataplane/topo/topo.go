// Package topo computes, as a pure function of the VPC state, the network
// the local VPC data path must build: one fabric (router) namespace per VPC,
// one namespace per running instance, and a Port per wired ENI. It also
// holds the naming scheme and the branch-ENI wiring contract shared with
// the CNI. Nothing here touches the kernel.
package topo

import (
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/vpc/state"
)

// AttachTag on an unattached ENI wires it somewhere other than an instance:
// "host" puts it in the root namespace (host access, like a VPN client),
// "rds:<db-id>" in the namespace of that database instance.
const AttachTag = "podsg:attach"

// APIPort is the TCP port of the in-VPC API endpoint: every instance
// namespace reaches the server's EC2 (and RDS) Query API at
// http://169.254.169.254:8450, as an EC2 interface VPC endpoint, next to
// instance metadata on port 80.
const APIPort = 8450

// EndpointPort is the TCP port of the same API at each VPC's interface endpoint address
// (resolver.EndpointAddress, in the fabric), which the resolver names
// sts.REGION.amazonaws.com and the like: plain HTTP for now (no TLS), so clients take
// http://sts.REGION.amazonaws.com as their endpoint URL.
const EndpointPort = 80

// Kind says where an ENI's own end lives.
type Kind string

// Port kinds.
const (
	KindInstance Kind = "instance" // eth<N> in an instance namespace
	KindTrunk    Kind = "trunk"    // eth<N> in an instance, underlay in a trunk namespace
	KindBranch   Kind = "branch"   // VXLAN sub-interface of a trunk
	KindHost     Kind = "host"     // a link in the root namespace
	KindRDS      Kind = "rds"      // eth0 in a database namespace
)

// Desired is the whole network to build.
type Desired struct {
	Names     Names
	VPCs      []*VPC
	Instances []*Instance
}

// VPC is one fabric.
type VPC struct {
	ID        string
	CIDR      netip.Prefix
	Namespace string
	// Gateways are the router addresses (subnet base+1), on the fabric's lo.
	Gateways []netip.Addr
	Ports    []*Port
	Groups   []*Group
}

// Group is a security group with the addresses of its member ENIs, which
// group-referencing rules match.
type Group struct {
	ID      string
	Rules   []state.Rule
	Members []netip.Addr
}

// Instance is a namespace standing for a running instance.
type Instance struct {
	ID        string
	Namespace string
	State     *state.Instance
	// Ports are its attached ENIs by device index.
	Ports []*Port
}

// Port is an ENI wired into a fabric.
type Port struct {
	ENI       *state.ENI
	Kind      Kind
	VPC       string
	Namespace string // namespace of the ENI's own link ("" root)
	IfName    string // its name there
	FabricIf  string
	MAC       net.HardwareAddr
	IPs       []netip.Addr
	Subnet    netip.Prefix
	Gateway   netip.Addr
	// DeviceIndex is the attachment's index (instance and trunk ports).
	DeviceIndex int
	// TrunkNS is the trunk's underlay namespace (trunk and branch ports).
	TrunkNS string
	// Trunk is the trunk port of a branch; VlanID its VNI.
	Trunk  *Port
	VlanID int
}

// Build computes the desired network from the state.
func Build(names Names, snap *state.Snapshot) *Desired {
	return BuildFrom(names, Input{
		VPCs: snap.VPCs(), Subnets: snap.Subnets(), Groups: snap.SecurityGroups(),
		Instances: snap.Instances(), ENIs: snap.NetworkInterfaces(), Assocs: snap.TrunkAssociations(),
	})
}

// Input is the state Build reads, in id order.
type Input struct {
	VPCs      []*state.VPC
	Subnets   []*state.Subnet
	Groups    []*state.SecurityGroup
	Instances []*state.Instance
	ENIs      []*state.ENI
	Assocs    []*state.TrunkAssociation
}

// BuildFrom is Build over plain slices (tests build them by hand).
func BuildFrom(names Names, in Input) *Desired {
	b := &builder{
		names: names, in: in, d: &Desired{Names: names},
		vpcs: map[string]*VPC{}, subnets: map[string]netip.Prefix{}, running: map[string]*Instance{}, ports: map[string]*Port{},
	}
	b.addVPCs()
	b.addSubnets()
	b.addInstances()
	b.addPorts()
	b.addBranches()
	b.addGroups()
	b.sortPorts()
	return b.d
}

// builder holds what BuildFrom's steps look up in each other's results. Every step skips
// what it cannot place (a malformed CIDR, an ENI of an unknown subnet): the state may be
// mid-change, and the data path builds what it can.
type builder struct {
	names   Names
	in      Input
	d       *Desired
	vpcs    map[string]*VPC
	subnets map[string]netip.Prefix // by subnet id, masked
	running map[string]*Instance    // running instances by id
	ports   map[string]*Port        // wired (non-branch) ENIs by id, where branches find their trunk
}

func (b *builder) addVPCs() {
	for _, v := range b.in.VPCs {
		p, err := netip.ParsePrefix(v.CIDR)
		if err != nil {
			continue
		}
		vpc := &VPC{ID: v.ID, CIDR: p.Masked(), Namespace: b.names.Fabric(v.ID)}
		b.vpcs[v.ID] = vpc
		b.d.VPCs = append(b.d.VPCs, vpc)
	}
}

func (b *builder) addSubnets() {
	for _, s := range b.in.Subnets {
		p, err := netip.ParsePrefix(s.CIDR)
		if vpc := b.vpcs[s.VPCID]; err == nil && vpc != nil {
			b.subnets[s.ID] = p.Masked()
			vpc.Gateways = append(vpc.Gateways, Gateway(p))
		}
	}
}

func (b *builder) addInstances() {
	for _, i := range b.in.Instances {
		if i.State == state.InstanceRunning && b.vpcs[i.VPCID] != nil {
			inst := &Instance{ID: i.ID, Namespace: b.names.Instance(i.ID), State: i}
			b.running[i.ID] = inst
			b.d.Instances = append(b.d.Instances, inst)
		}
	}
}

// addPorts wires every ENI that is not a branch: attached ones into their instance,
// tagged ones into the host or a database.
func (b *builder) addPorts() {
	hostSeen := map[string]bool{}
	for _, e := range b.in.ENIs {
		vpc, subnet := b.vpcs[e.VPCID], b.subnets[e.SubnetID]
		if vpc == nil || !subnet.IsValid() || e.TrunkAssociationID != "" {
			continue // branches are placed once their trunk is known
		}
		p := newPort(e, vpc, subnet)
		if !b.place(p, e, vpc, hostSeen) {
			continue
		}
		b.ports[e.ID] = p
		vpc.Ports = append(vpc.Ports, p)
	}
}

// place sets where p's own end lives; false means nowhere (yet).
func (b *builder) place(p *Port, e *state.ENI, vpc *VPC, hostSeen map[string]bool) bool {
	switch tag := e.Tags[AttachTag]; {
	case e.Attachment != nil:
		inst := b.running[e.Attachment.InstanceID]
		if inst == nil {
			return false
		}
		p.Kind, p.Namespace, p.DeviceIndex = KindInstance, inst.Namespace, e.Attachment.DeviceIndex
		p.IfName = "eth" + strconv.Itoa(p.DeviceIndex)
		if e.InterfaceType == state.InterfaceTypeTrunk {
			p.Kind, p.TrunkNS = KindTrunk, b.names.Trunk(e.ID)
		}
		inst.Ports = append(inst.Ports, p)
	case tag == "host" && !hostSeen[vpc.ID]:
		hostSeen[vpc.ID] = true // one host link per VPC: its CIDR routes through it
		p.Kind, p.Namespace, p.IfName = KindHost, "", b.names.HostIf(e.ID)
	case strings.HasPrefix(tag, "rds:") && len(tag) > 4:
		p.Kind, p.Namespace, p.IfName = KindRDS, b.names.RDS(tag[4:]), "eth0"
	default:
		return false
	}
	return true
}

// addBranches wires each associated branch ENI behind its trunk, in the trunk's VPC.
func (b *builder) addBranches() {
	enis := map[string]*state.ENI{}
	for _, e := range b.in.ENIs {
		enis[e.ID] = e
	}
	for _, a := range b.in.Assocs {
		trunk, br := b.ports[a.TrunkID], enis[a.BranchID]
		if trunk == nil || trunk.Kind != KindTrunk || br == nil || !b.subnets[br.SubnetID].IsValid() {
			continue
		}
		vpc := b.vpcs[br.VPCID]
		if vpc == nil || vpc.ID != trunk.VPC {
			continue
		}
		p := newPort(br, vpc, b.subnets[br.SubnetID])
		p.Kind, p.TrunkNS, p.Trunk, p.VlanID = KindBranch, trunk.TrunkNS, trunk, a.VlanID
		vpc.Ports = append(vpc.Ports, p)
	}
}

func (b *builder) addGroups() {
	for _, g := range b.in.Groups {
		if vpc := b.vpcs[g.VPCID]; vpc != nil {
			vpc.Groups = append(vpc.Groups, &Group{ID: g.ID, Rules: g.Rules, Members: members(g.ID, b.in.ENIs)})
		}
	}
}

// sortPorts orders ports by ENI id in a VPC and by device index in an instance.
func (b *builder) sortPorts() {
	for _, vpc := range b.d.VPCs {
		sort.Slice(vpc.Ports, func(i, j int) bool { return vpc.Ports[i].ENI.ID < vpc.Ports[j].ENI.ID })
	}
	for _, inst := range b.d.Instances {
		sort.Slice(inst.Ports, func(i, j int) bool { return inst.Ports[i].DeviceIndex < inst.Ports[j].DeviceIndex })
	}
}

func newPort(e *state.ENI, vpc *VPC, subnet netip.Prefix) *Port {
	mac, _ := net.ParseMAC(e.MAC)
	p := &Port{ENI: e, VPC: vpc.ID, FabricIf: FabricIf(e.ID), MAC: mac, Subnet: subnet, Gateway: Gateway(subnet)}
	for _, s := range e.PrivateIPs {
		if a, err := netip.ParseAddr(s); err == nil {
			p.IPs = append(p.IPs, a)
		}
	}
	return p
}

// members lists the private IPs of every ENI in the group: a rule that
// references the group matches them, wired or not, as in EC2.
func members(groupID string, enis []*state.ENI) []netip.Addr {
	var out []netip.Addr
	for _, e := range enis {
		for _, g := range e.Groups {
			if g != groupID {
				continue
			}
			for _, s := range e.PrivateIPs {
				if a, err := netip.ParseAddr(s); err == nil {
					out = append(out, a)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// Instance returns the desired instance with the id, or nil.
func (d *Desired) Instance(id string) *Instance {
	for _, i := range d.Instances {
		if i.ID == id {
			return i
		}
	}
	return nil
}
