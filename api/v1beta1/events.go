package v1beta1

// ReportingController is the controller named in every event podsg-controller records; `podsg
// explain` picks podsg's events by it.
const ReportingController = "podsg-controller"

// Reasons of the events podsg-controller records, which users, alerts and `podsg explain`
// read. AWS's names where AWS has one, so existing alerts and runbooks keep working.
const (
	// On pods.
	ReasonSecurityGroupRequested = "SecurityGroupRequested"
	ReasonResourceAllocated      = "ResourceAllocated"
	ReasonAllocationFailed       = "BranchAllocationFailed"
	ReasonAnnotationFailed       = "BranchENIAnnotationFailed"
	ReasonNoSecurityGroups       = "NoSecurityGroups"
	// A running pod's branch ENI got the groups its policies give it now (updatePolicy
	// InPlace), or could not.
	ReasonSecurityGroupsUpdated      = "SecurityGroupsUpdated"
	ReasonSecurityGroupsUpdateFailed = "SecurityGroupsUpdateFailed"

	// On nodes.
	ReasonTrunkInitiated      = "NodeTrunkInitiated"
	ReasonTrunkCreationFailed = "TrunkENICreationFailed"
	ReasonUnsupported         = "Unsupported"
)
