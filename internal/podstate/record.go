package podstate

import (
	"fmt"
	"net/netip"
)

// Version is the record format this build writes. Reading accepts every version up to it;
// a newer file (from a newer agent, before a rollback) is refused rather than misread.
//
//	1: first format.
//	2: RouteTable also on regular pods (the table of the secondary ENI owning the IP); a
//	   version-1 reader would leave that pod's source rule behind.
const Version = 2

// Kinds of pod network.
const (
	KindRegular = "regular" // a secondary IP of one of the node's ENIs, behind a veth
	KindBranch  = "branch"  // a branch ENI reached through a trunk sub-interface
)

// Enforcing modes of branch pods (AWS's POD_SECURITY_GROUP_ENFORCING_MODE values).
const (
	// ModeStrict sends all of the pod's traffic, even to its own node, through the branch ENI,
	// so its security groups apply to everything.
	ModeStrict = "strict"
	// ModeStandard sends only off-node traffic through the branch ENI; traffic to the node and
	// same-node pods is delivered directly (kubelet probes work without the pod's SG).
	ModeStandard = "standard"
)

// Record is what the node knows about one container's network.
type Record struct {
	Version     int    `json:"version"`
	ContainerID string `json:"containerID"`
	IfName      string `json:"ifName"`
	Netns       string `json:"netns,omitempty"`

	PodNamespace string `json:"podNamespace"`
	PodName      string `json:"podName"`
	PodUID       string `json:"podUID,omitempty"`

	Kind string `json:"kind"`
	// IP is the pod's address; Gateway the next hop the pod's traffic goes to in the VPC.
	IP      netip.Addr `json:"ip"`
	Gateway netip.Addr `json:"gateway,omitempty"`
	// HostVeth is the node side of the pod's veth pair.
	HostVeth string `json:"hostVeth"`
	// ENIID is the ENI that owns IP: a node ENI for regular pods, the branch ENI for branch pods.
	ENIID string `json:"eniID,omitempty"`

	// Branch pods only, but RouteTable.
	VLAN         int    `json:"vlan,omitempty"`
	BranchMAC    string `json:"branchMAC,omitempty"`
	SubnetCIDR   string `json:"subnetCIDR,omitempty"`
	SubInterface string `json:"subInterface,omitempty"`
	// TrunkLink is the node's trunk interface the sub-interface sits on.
	TrunkLink string `json:"trunkLink,omitempty"`
	// TrunkGateway is the router address of the trunk's subnet, where a vxlan sub-interface
	// sends its frames in the local VPC; unset means Gateway (branch and trunk share a subnet).
	TrunkGateway netip.Addr `json:"trunkGateway,omitzero"`
	// RouteTable is a branch pod's own table (route table base + VLAN), or, for a regular pod
	// whose IP belongs to a secondary ENI, that ENI's table (device index + 1); 0 for a
	// regular pod on the primary ENI, which the main table serves.
	RouteTable int    `json:"routeTable,omitempty"`
	Mode       string `json:"mode,omitempty"`
}

// Key names the record's file: one per container and interface.
func (r *Record) Key() string { return r.ContainerID + "_" + r.IfName }

// Validate checks that the record can drive a teardown.
func (r *Record) Validate() error {
	if err := r.validateCommon(); err != nil {
		return err
	}
	if r.Kind == KindBranch {
		return r.validateBranch()
	}
	if r.RouteTable < 0 || r.RouteTable >= 253 {
		return fmt.Errorf("regular record route table %d: want 0 (main) or an ENI's table below 253", r.RouteTable)
	}
	return nil
}

// validateCommon checks the fields every kind of record needs.
func (r *Record) validateCommon() error {
	switch {
	case r.Version < 1 || r.Version > Version:
		return fmt.Errorf("record version %d: this build reads versions 1..%d", r.Version, Version)
	case r.ContainerID == "" || r.IfName == "":
		return fmt.Errorf("record without container id or interface name")
	case r.Kind != KindRegular && r.Kind != KindBranch:
		return fmt.Errorf("record kind %q: want %q or %q", r.Kind, KindRegular, KindBranch)
	case !r.IP.IsValid():
		return fmt.Errorf("record without a pod IP")
	case r.HostVeth == "":
		return fmt.Errorf("record without a host veth name")
	}
	return nil
}

// validateBranch checks the fields a branch record adds: its VLAN, sub-interface, route table and mode.
func (r *Record) validateBranch() error {
	switch {
	case r.VLAN < 1 || r.VLAN > 4094:
		return fmt.Errorf("branch record VLAN %d: want 1..4094", r.VLAN)
	case r.SubInterface == "" || r.RouteTable == 0:
		return fmt.Errorf("branch record without sub-interface or route table")
	case r.Mode != ModeStrict && r.Mode != ModeStandard:
		return fmt.Errorf("branch record mode %q: want %q or %q", r.Mode, ModeStrict, ModeStandard)
	}
	return nil
}
