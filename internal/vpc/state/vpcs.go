package state

import (
	"fmt"
	"net/netip"

	"github.com/podsg/podsg/internal/vpc/apierr"
)

// parseCIDR accepts a canonical IPv4 CIDR with a prefix length in [16, 28],
// the range EC2 allows for VPCs and subnets.
func parseCIDR(param, cidr, rangeCode string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, apierr.InvalidValue("Value (%s) for parameter %s is invalid. This is not a valid CIDR block.", cidr, param)
	}
	if p.Masked() != p {
		return netip.Prefix{}, apierr.InvalidValue("Value (%s) for parameter %s is invalid. This is not a valid CIDR block.", cidr, param)
	}
	if p.Bits() < 16 || p.Bits() > 28 {
		return netip.Prefix{}, apierr.New(rangeCode, "The CIDR '%s' is invalid.", cidr)
	}
	return p, nil
}

// CreateVPC creates a VPC and its default security group.
func (tx *Tx) CreateVPC(cidr string, tags Tags) (*VPC, error) {
	p, err := parseCIDR("cidrBlock", cidr, "InvalidVpc.Range")
	if err != nil {
		return nil, err
	}
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	v := &VPC{
		ID:              tx.newID("vpc"),
		CIDR:            p.String(),
		CIDRAssociation: tx.newID("vpc-cidr-assoc"),
		Tags:            tags,
		CreatedAt:       tx.now,
	}
	sg := &SecurityGroup{
		ID:          tx.newID("sg"),
		VPCID:       v.ID,
		Name:        "default",
		Description: "default VPC security group",
	}
	// The default group admits traffic from its own members and allows all
	// egress, like EC2's.
	sg.Rules = []Rule{
		{ID: tx.newID("sgr"), Protocol: "-1", FromPort: -1, ToPort: -1, GroupID: sg.ID},
		tx.defaultEgressRule(),
	}
	v.DefaultGroupID = sg.ID
	put(tx, tx.m.vpcs, v.ID, v)
	put(tx, tx.m.groups, sg.ID, sg)
	return v, nil
}

func (tx *Tx) defaultEgressRule() Rule {
	return Rule{ID: tx.newID("sgr"), Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"}
}

// DeleteVPC deletes an empty VPC along with its default security group.
func (tx *Tx) DeleteVPC(id string) error {
	v, err := tx.lookupVPC(id)
	if err != nil {
		return err
	}
	if len(tx.m.subnetsByVPC[id]) > 0 {
		return apierr.Dependency("The vpc '%s' has dependencies and cannot be deleted.", id)
	}
	for gid := range tx.m.groupsByVPC[id] {
		if gid != v.DefaultGroupID {
			return apierr.Dependency("The vpc '%s' has dependencies and cannot be deleted.", id)
		}
	}
	remove(tx, tx.m.groups, v.DefaultGroupID)
	remove(tx, tx.m.vpcs, id)
	return nil
}

// CreateSubnet carves a subnet out of a VPC's CIDR.
func (tx *Tx) CreateSubnet(vpcID, cidr, az string, tags Tags) (*Subnet, error) {
	v, err := tx.lookupVPC(vpcID)
	if err != nil {
		return nil, err
	}
	p, err := parseCIDR("cidrBlock", cidr, "InvalidSubnet.Range")
	if err != nil {
		return nil, err
	}
	vp := netip.MustParsePrefix(v.CIDR)
	if !vp.Contains(p.Addr()) || p.Bits() < vp.Bits() {
		return nil, apierr.New("InvalidSubnet.Range", "The CIDR '%s' is invalid.", cidr)
	}
	for sid := range tx.m.subnetsByVPC[vpcID] {
		other, _ := tx.m.subnets.get(sid)
		if netip.MustParsePrefix(other.CIDR).Overlaps(p) {
			return nil, apierr.New("InvalidSubnet.Conflict", "The CIDR '%s' conflicts with another subnet", cidr)
		}
	}
	if az == "" {
		az = tx.Region() + "a"
	}
	if err := tx.checkAZ(az); err != nil {
		return nil, err
	}
	if err := CheckTags(tags); err != nil {
		return nil, err
	}
	s := &Subnet{ID: tx.newID("subnet"), VPCID: vpcID, CIDR: p.String(), AvailabilityZone: az, Tags: tags}
	put(tx, tx.m.subnets, s.ID, s)
	return s, nil
}

// Zones lists the availability zones of the region: <region>a … <region>d.
func Zones(region string) []string {
	return []string{region + "a", region + "b", region + "c", region + "d"}
}

func (tx *Tx) checkAZ(az string) error {
	for _, z := range Zones(tx.Region()) {
		if z == az {
			return nil
		}
	}
	return apierr.InvalidValue("Value (%s) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: %v.", az, Zones(tx.Region()))
}

// DeleteSubnet deletes a subnet with no network interfaces in it.
func (tx *Tx) DeleteSubnet(id string) error {
	if _, err := tx.lookupSubnet(id); err != nil {
		return err
	}
	if len(tx.m.ipOwner[id]) > 0 {
		return apierr.Dependency("The subnet '%s' has dependencies and cannot be deleted.", id)
	}
	remove(tx, tx.m.subnets, id)
	return nil
}

// PrivateDNSName returns the EC2-style private DNS name for an address.
func PrivateDNSName(region, ip string) string {
	a := netip.MustParseAddr(ip).As4()
	return fmt.Sprintf("ip-%d-%d-%d-%d.%s", a[0], a[1], a[2], a[3], PrivateDNSDomain(region))
}

// PrivateDNSDomain is the domain of a region's private DNS names, which the instances search.
func PrivateDNSDomain(region string) string { return region + ".compute.internal" }
