package state

import (
	"maps"
	"slices"
	"time"
)

// AccountID is the owner of every resource in the local VPC.
const AccountID = "111122223333"

// Interface types an ENI can have.
const (
	InterfaceTypeInterface = "interface"
	InterfaceTypeTrunk     = "trunk"
	InterfaceTypeBranch    = "branch"
)

// Instance states.
const (
	InstanceRunning    = "running"
	InstanceTerminated = "terminated"
)

// Tags maps tag keys to values.
type Tags map[string]string

// Objects below are copy-on-write: once stored, a value is never modified;
// a transaction stores a changed clone. That is what lets readers hand out
// pointers and lets a failed transaction restore the old pointers.

// VPC is a virtual network.
type VPC struct {
	ID              string    `json:"id"`
	CIDR            string    `json:"cidr"`
	CIDRAssociation string    `json:"cidrAssociationId"`
	DefaultGroupID  string    `json:"defaultGroupId"`
	Tags            Tags      `json:"tags,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
}

// Subnet is a VPC subnet in one availability zone.
type Subnet struct {
	ID               string `json:"id"`
	VPCID            string `json:"vpcId"`
	CIDR             string `json:"cidr"`
	AvailabilityZone string `json:"availabilityZone"`
	Tags             Tags   `json:"tags,omitempty"`
}

// SecurityGroup is a VPC security group with its rules.
type SecurityGroup struct {
	ID          string `json:"id"`
	VPCID       string `json:"vpcId"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Rules       []Rule `json:"rules,omitempty"`
	Tags        Tags   `json:"tags,omitempty"`
}

// Rule is one security group rule: one protocol/port range and one peer,
// the unit EC2 gives an sgr- id.
type Rule struct {
	ID     string `json:"id"`
	Egress bool   `json:"egress"`
	// Protocol is "-1" (all), "tcp", "udp", "icmp" or a protocol number.
	Protocol string `json:"protocol"`
	// FromPort/ToPort are the port range, or ICMP type/code; -1 when unused.
	FromPort int32 `json:"fromPort"`
	ToPort   int32 `json:"toPort"`
	// Exactly one of CIDR and GroupID is set.
	CIDR        string `json:"cidr,omitempty"`
	GroupID     string `json:"groupId,omitempty"`
	Description string `json:"description,omitempty"`
	Tags        Tags   `json:"tags,omitempty"`
}

// Instance is an EC2 instance; its network interfaces are ENIs attached to it.
type Instance struct {
	ID               string    `json:"id"`
	ReservationID    string    `json:"reservationId"`
	ImageID          string    `json:"imageId"`
	Type             string    `json:"type"`
	SubnetID         string    `json:"subnetId"`
	VPCID            string    `json:"vpcId"`
	AvailabilityZone string    `json:"availabilityZone"`
	State            string    `json:"state"`
	LaunchIndex      int       `json:"launchIndex"`
	LaunchTime       time.Time `json:"launchTime"`
	TerminatedAt     time.Time `json:"terminatedAt,omitzero"`
	ClientToken      string    `json:"clientToken,omitempty"`
	// PrimaryENIID is kept after termination deletes the ENI so the
	// terminated instance still renders its former identity.
	PrimaryENIID     string `json:"primaryEniId"`
	PrivateIPAddress string `json:"privateIpAddress"`
	Tags             Tags   `json:"tags,omitempty"`
	// MetadataOptions are absent from records written before they were
	// modelled, which read as EC2's defaults.
	MetadataOptions MetadataOptions `json:"metadataOptions,omitzero"`
	// IAMProfile is the instance profile associated with the instance, whose
	// role's credentials its metadata service hands out.
	IAMProfile *ProfileAssociation `json:"iamInstanceProfile,omitempty"`
}

// ProfileAssociation binds an instance profile to an instance.
type ProfileAssociation struct {
	ID         string `json:"id"` // iip-assoc-…
	ProfileARN string `json:"profileArn"`
	ProfileID  string `json:"profileId"`
}

// ENI is an elastic network interface.
type ENI struct {
	ID               string `json:"id"`
	SubnetID         string `json:"subnetId"`
	VPCID            string `json:"vpcId"`
	AvailabilityZone string `json:"availabilityZone"`
	Description      string `json:"description"`
	MAC              string `json:"mac"`
	InterfaceType    string `json:"interfaceType"`
	// PrivateIPs holds the primary address first.
	PrivateIPs      []string    `json:"privateIps"`
	Groups          []string    `json:"groups"`
	SourceDestCheck bool        `json:"sourceDestCheck"`
	Attachment      *Attachment `json:"attachment,omitempty"`
	// TrunkAssociationID is set while the ENI is a branch of a trunk.
	TrunkAssociationID string    `json:"trunkAssociationId,omitempty"`
	Tags               Tags      `json:"tags,omitempty"`
	CreatedAt          time.Time `json:"createdAt"`
}

// InUse reports the EC2 status: in-use when attached or associated as a branch.
func (e *ENI) InUse() bool { return e.Attachment != nil || e.TrunkAssociationID != "" }

// Status is the EC2 status string.
func (e *ENI) Status() string {
	if e.InUse() {
		return "in-use"
	}
	return "available"
}

// Attachment binds an ENI to an instance at a device index.
type Attachment struct {
	ID                  string    `json:"id"`
	InstanceID          string    `json:"instanceId"`
	DeviceIndex         int       `json:"deviceIndex"`
	DeleteOnTermination bool      `json:"deleteOnTermination"`
	AttachTime          time.Time `json:"attachTime"`
}

// TrunkAssociation binds a branch ENI to a trunk ENI on a VLAN.
type TrunkAssociation struct {
	ID       string `json:"id"`
	TrunkID  string `json:"trunkId"`
	BranchID string `json:"branchId"`
	VlanID   int    `json:"vlanId"`
	Tags     Tags   `json:"tags,omitempty"`
}

// ClientToken remembers an idempotent request: the hash of its parameters
// and the resources it produced.
type ClientToken struct {
	Key        string    `json:"key"`
	ParamsHash string    `json:"paramsHash"`
	Resources  []string  `json:"resources"`
	CreatedAt  time.Time `json:"createdAt"`
}

func (v *VPC) clone() *VPC {
	c := *v
	c.Tags = maps.Clone(v.Tags)
	return &c
}

func (s *Subnet) clone() *Subnet {
	c := *s
	c.Tags = maps.Clone(s.Tags)
	return &c
}

func (g *SecurityGroup) clone() *SecurityGroup {
	c := *g
	c.Tags = maps.Clone(g.Tags)
	c.Rules = make([]Rule, len(g.Rules))
	for i, r := range g.Rules {
		r.Tags = maps.Clone(r.Tags)
		c.Rules[i] = r
	}
	return &c
}

func (i *Instance) clone() *Instance {
	c := *i
	c.Tags = maps.Clone(i.Tags)
	return &c
}

func (e *ENI) clone() *ENI {
	c := *e
	c.Tags = maps.Clone(e.Tags)
	c.PrivateIPs = slices.Clone(e.PrivateIPs)
	c.Groups = slices.Clone(e.Groups)
	if e.Attachment != nil {
		a := *e.Attachment
		c.Attachment = &a
	}
	return &c
}
