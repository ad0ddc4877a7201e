package vpctest

import (
	"context"
	"fmt"

	"github.com/podsg/podsg/internal/vpc/state"
)

// FleetSpec sizes a simulated fleet of trunk nodes for scale benchmarks: instances, each with
// a trunk ENI attached at device index 1 and branch ENIs associated with it.
type FleetSpec struct {
	Nodes, BranchesPerNode int
	// InstanceType must allow BranchesPerNode branches (default m5.4xlarge: 54).
	InstanceType string
	// Groups are the branches' security groups (default: their VPC's default group).
	Groups []string
	// TrunkTags and BranchTags tag each trunk and branch (nil: none); node is the node's
	// index, vlan the branch's.
	TrunkTags  func(node int, instanceID string) state.Tags
	BranchTags func(node int, trunkID string, vlan int) state.Tags
	// PerSubnet is how many ENIs a subnet holds before the next VPC and /16 subnet start
	// (default 50,000: a /16 holds 65,531 addresses).
	PerSubnet int
}

// FleetNode is one seeded node.
type FleetNode struct {
	Index                      int
	VPC, Subnet, SubnetCIDR    string
	Instance, Trunk, TrunkAtt  string
	Branches                   []FleetBranch
	InstanceType, PrimaryENIID string
}

// FleetBranch is one seeded branch ENI and its association.
type FleetBranch struct {
	ENI, Association, MAC, IP string
	VLAN                      int
	Groups                    []string
}

// SeedFleet writes spec's fleet through the state layer, a hundred nodes per transaction, so
// a 100,000-ENI state is built in seconds instead of the minutes the Query API would take;
// what is measured afterwards goes through the API.
func SeedFleet(ctx context.Context, store *state.Store, spec FleetSpec) ([]FleetNode, error) {
	if spec.InstanceType == "" {
		spec.InstanceType = "m5.4xlarge"
	}
	if spec.PerSubnet == 0 {
		spec.PerSubnet = 50000
	}
	f := &fleet{spec: spec}
	const perTx = 100
	for first := 0; first < spec.Nodes; first += perTx {
		err := store.Update(ctx, false, func(tx *state.Tx) error {
			for i := first; i < min(first+perTx, spec.Nodes); i++ {
				if err := f.node(tx, i); err != nil {
					return fmt.Errorf("node %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("seeding a fleet of %d nodes: %w", spec.Nodes, err)
		}
	}
	return f.nodes, nil
}

// fleet is SeedFleet's progress: the nodes seeded so far and the subnet being filled.
type fleet struct {
	spec                   FleetSpec
	nodes                  []FleetNode
	vpcID, subnetID, cidr  string
	defaultGroup           string
	inSubnet, subnetNumber int
}

// subnet returns the subnet the next node goes to, starting a new VPC and /16 subnet when
// the current one is full.
func (f *fleet) subnet(tx *state.Tx) error {
	if f.vpcID != "" && f.inSubnet+f.spec.BranchesPerNode+2 <= f.spec.PerSubnet {
		return nil
	}
	f.cidr = fmt.Sprintf("10.%d.0.0/16", f.subnetNumber)
	v, err := tx.CreateVPC(f.cidr, nil)
	if err != nil {
		return err
	}
	s, err := tx.CreateSubnet(v.ID, f.cidr, "", nil)
	if err != nil {
		return err
	}
	f.vpcID, f.subnetID, f.defaultGroup, f.inSubnet = v.ID, s.ID, v.DefaultGroupID, 0
	f.subnetNumber++
	return nil
}

// node seeds node i: its instance, its trunk attached, its branches associated.
func (f *fleet) node(tx *state.Tx, i int) error {
	spec := f.spec
	if err := f.subnet(tx); err != nil {
		return err
	}
	n := FleetNode{Index: i, InstanceType: spec.InstanceType, VPC: f.vpcID, Subnet: f.subnetID, SubnetCIDR: f.cidr}
	insts, err := tx.RunInstances(state.RunInput{ImageID: "ami-12345678", InstanceType: spec.InstanceType,
		SubnetID: f.subnetID, MinCount: 1, MaxCount: 1})
	if err != nil {
		return err
	}
	n.Instance, n.PrimaryENIID = insts[0].ID, insts[0].PrimaryENIID
	var trunkTags state.Tags
	if spec.TrunkTags != nil {
		trunkTags = spec.TrunkTags(i, n.Instance)
	}
	trunk, err := tx.CreateNetworkInterface(state.CreateENIInput{SubnetID: f.subnetID, InterfaceType: "trunk",
		Description: "aws-k8s-trunk-eni", Tags: trunkTags})
	if err != nil {
		return err
	}
	att, err := tx.AttachNetworkInterface(trunk.ID, n.Instance, 1)
	if err != nil {
		return err
	}
	n.Trunk, n.TrunkAtt = trunk.ID, att.ID
	groups := spec.Groups
	if len(groups) == 0 {
		groups = []string{f.defaultGroup}
	}
	for vlan := 1; vlan <= spec.BranchesPerNode; vlan++ {
		var tags state.Tags
		if spec.BranchTags != nil {
			tags = spec.BranchTags(i, trunk.ID, vlan)
		}
		b, err := tx.CreateNetworkInterface(state.CreateENIInput{SubnetID: f.subnetID, InterfaceType: "branch",
			GroupIDs: groups, Tags: tags})
		if err != nil {
			return err
		}
		a, err := tx.AssociateTrunkInterface(state.AssociateInput{BranchID: b.ID, TrunkID: trunk.ID, VlanID: vlan})
		if err != nil {
			return err
		}
		n.Branches = append(n.Branches, FleetBranch{ENI: b.ID, Association: a.ID, MAC: b.MAC, IP: b.PrivateIPs[0],
			VLAN: vlan, Groups: groups})
	}
	f.inSubnet += spec.BranchesPerNode + 2 // primary and trunk
	f.nodes = append(f.nodes, n)
	return nil
}
