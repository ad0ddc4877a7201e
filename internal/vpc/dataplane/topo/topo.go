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
	"strings"

	"github.com/podsg/podsg/internal/vpc/state"
)

// AttachTag on an unattached ENI wires it somewhere other than an instance:
// "host" puts it in the root namespace (host access, like a VPN client),
// "rds:<db-id>" in the namespace of that database instance.
const AttachTag = "podsg:attach"

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
	d := &Desired{Names: names}
	vpcs := map[string]*VPC{}
	for _, v := range in.VPCs {
		p, err := netip.ParsePrefix(v.CIDR)
		if err != nil {
			continue
		}
		vpc := &VPC{ID: v.ID, CIDR: p.Masked(), Namespace: names.Fabric(v.ID)}
		vpcs[v.ID] = vpc
		d.VPCs = append(d.VPCs, vpc)
	}
	subnets := map[string]netip.Prefix{}
	for _, s := range in.Subnets {
		p, err := netip.ParsePrefix(s.CIDR)
		if vpc := vpcs[s.VPCID]; err == nil && vpc != nil {
			subnets[s.ID] = p.Masked()
			vpc.Gateways = append(vpc.Gateways, Gateway(p))
		}
	}
	running := map[string]*Instance{}
	for _, i := range in.Instances {
		if i.State == state.InstanceRunning && vpcs[i.VPCID] != nil {
			inst := &Instance{ID: i.ID, Namespace: names.Instance(i.ID), State: i}
			running[i.ID] = inst
			d.Instances = append(d.Instances, inst)
		}
	}
	ports := map[string]*Port{}
	hostSeen := map[string]bool{}
	for _, e := range in.ENIs {
		vpc, subnet := vpcs[e.VPCID], subnets[e.SubnetID]
		if vpc == nil || !subnet.IsValid() || e.TrunkAssociationID != "" {
			continue // branches are placed once their trunk is known
		}
		p := newPort(e, vpc, subnet)
		switch tag := e.Tags[AttachTag]; {
		case e.Attachment != nil:
			inst := running[e.Attachment.InstanceID]
			if inst == nil {
				continue
			}
			p.Kind, p.Namespace, p.DeviceIndex = KindInstance, inst.Namespace, e.Attachment.DeviceIndex
			p.IfName = "eth" + itoa(p.DeviceIndex)
			if e.InterfaceType == state.InterfaceTypeTrunk {
				p.Kind, p.TrunkNS = KindTrunk, names.Trunk(e.ID)
			}
			inst.Ports = append(inst.Ports, p)
		case tag == "host" && !hostSeen[vpc.ID]:
			hostSeen[vpc.ID] = true // one host link per VPC: its CIDR routes through it
			p.Kind, p.Namespace, p.IfName = KindHost, "", names.HostIf(e.ID)
		case strings.HasPrefix(tag, "rds:") && len(tag) > 4:
			p.Kind, p.Namespace, p.IfName = KindRDS, names.RDS(tag[4:]), "eth0"
		default:
			continue
		}
		ports[e.ID] = p
		vpc.Ports = append(vpc.Ports, p)
	}
	enis := map[string]*state.ENI{}
	for _, e := range in.ENIs {
		enis[e.ID] = e
	}
	for _, a := range in.Assocs {
		trunk, b := ports[a.TrunkID], enis[a.BranchID]
		if trunk == nil || trunk.Kind != KindTrunk || b == nil || !subnets[b.SubnetID].IsValid() {
			continue
		}
		vpc := vpcs[b.VPCID]
		if vpc == nil || vpc.ID != trunk.VPC {
			continue
		}
		p := newPort(b, vpc, subnets[b.SubnetID])
		p.Kind, p.TrunkNS, p.Trunk, p.VlanID = KindBranch, trunk.TrunkNS, trunk, a.VlanID
		vpc.Ports = append(vpc.Ports, p)
	}
	for _, g := range in.Groups {
		if vpc := vpcs[g.VPCID]; vpc != nil {
			vpc.Groups = append(vpc.Groups, &Group{ID: g.ID, Rules: g.Rules, Members: members(g.ID, in.ENIs)})
		}
	}
	for _, vpc := range d.VPCs {
		sort.Slice(vpc.Ports, func(i, j int) bool { return vpc.Ports[i].ENI.ID < vpc.Ports[j].ENI.ID })
	}
	for _, inst := range d.Instances {
		sort.Slice(inst.Ports, func(i, j int) bool { return inst.Ports[i].DeviceIndex < inst.Ports[j].DeviceIndex })
	}
	return d
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

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
