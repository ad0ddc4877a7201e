package cloud

// Interface types of EC2 network interfaces.
const (
	InterfaceTypeInterface = "interface"
	InterfaceTypeTrunk     = "trunk"
	InterfaceTypeBranch    = "branch"
)

// Tag keys podsg writes on what it creates, so that a restart or a sweeper can find them.
const (
	TagCluster   = "podsg.io/cluster"      // value: cluster name; on every resource podsg creates
	TagNamespace = "podsg.io/namespace"    // branch ENIs: the pod's namespace
	TagPodName   = "podsg.io/pod-name"     // branch ENIs: the pod's name
	TagPodUID    = "podsg.io/pod-uid"      // branch ENIs: the pod's UID (names can be reused)
	TagNode      = "podsg.io/node"         // trunk and branch ENIs: the node name
	TagTrunkENI  = "podsg.io/trunk-eni-id" // branch ENIs: the trunk they were made for
	// TagNodeUID marks a trunk ENI with the UID of the Node it was made for: a node can be
	// deleted and created again under its name (a new instance), and the old trunk is not its.
	TagNodeUID = "podsg.io/node-uid"
	// TagInstance marks the ENIs podsg-agent creates for pod IPs with the instance they are
	// for, so that an agent restarting after a crash between create and attach finds and
	// deletes the one it left behind.
	TagInstance = "podsg.io/instance-id"
	// TagNoManage=true on an attached ENI keeps podsg-agent from using its IPs for pods (the
	// VPC CNI honours the same tag).
	TagNoManage = "node.k8s.amazonaws.com/no_manage"
)

// Instance is an EC2 instance as podsg needs it.
type Instance struct {
	ID               string
	Type             string
	AvailabilityZone string
	VPCID            string
	SubnetID         string
	PrivateIP        string
	// SecurityGroups of the primary network interface.
	SecurityGroups []string
	// NetworkInterfaces attached to the instance, primary first.
	NetworkInterfaces []NetworkInterface
}

// Subnet is an EC2 subnet.
type Subnet struct {
	ID               string
	VPCID            string
	CIDR             string
	AvailabilityZone string
}

// SecurityGroup is an EC2 security group.
type SecurityGroup struct {
	ID    string
	Name  string
	VPCID string
}

// NetworkInterface is an EC2 ENI.
type NetworkInterface struct {
	ID             string
	Type           string // InterfaceType*
	Status         string // available, in-use, ...
	SubnetID       string
	VPCID          string
	MAC            string
	PrivateIP      string
	SecondaryIPs   []string
	Description    string
	SecurityGroups []string
	Tags           map[string]string
	// Attachment, when the ENI is attached to an instance.
	AttachmentID string
	InstanceID   string
	DeviceIndex  int
}

// TrunkAssociation ties a branch ENI to a trunk ENI under a VLAN id.
type TrunkAssociation struct {
	ID       string
	TrunkID  string
	BranchID string
	VLAN     int
}

// CreateNetworkInterfaceInput are the parameters podsg uses when creating an ENI.
type CreateNetworkInterfaceInput struct {
	SubnetID       string
	Description    string
	SecurityGroups []string
	Type           string // InterfaceType*; "" means a plain interface
	Tags           map[string]string
	// ClientToken makes the call idempotent: a retry with the same token returns the ENI the
	// first call created instead of a second one.
	ClientToken string
	// SecondaryIPCount asks for that many secondary private IPs besides the primary one.
	SecondaryIPCount int
}

// NetworkInterfaceFilter selects ENIs; empty fields do not filter. All set fields must match.
type NetworkInterfaceFilter struct {
	IDs        []string
	InstanceID string
	SubnetID   string
	Type       string
	// Tags must all be present with these values; an empty value means "tag key present".
	Tags map[string]string
	// TagsAnyOf: each key's tag must be present with one of its values (one EC2 filter with
	// several values); a key with no values matches nothing. EC2 takes at most 200 values in
	// a filter; callers chunk.
	TagsAnyOf map[string][]string
}
