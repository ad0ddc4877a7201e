package podnet

import (
	"crypto/sha1" //nolint:gosec // a name hash, not security: AWS's CNI derives veth names the same way
	"encoding/hex"
	"strconv"
	"strings"
)

// Rule priorities, AWS's values so that an operator's knowledge (and tooling) carries over.
const (
	PrioritySubInterface = 10   // strict: iif <subif>/<hostVeth> → pod table
	PriorityToPod        = 512  // standard: to <pod IP> → main
	PriorityFromPod      = 1536 // standard: from <pod IP> → pod table
)

// PodGatewayIP is the link-local next hop every pod routes through; the node answers for it
// with a permanent neighbour entry, so it never needs an address on the node.
const PodGatewayIP = "169.254.1.1"

// StrictVethPrefix names the host veths of strict-mode branch pods, as AWS's VPC CNI does.
const StrictVethPrefix = "vlan"

// HostVethName is prefix + the first 11 hex digits of sha1("<namespace>.<name>"), at most 15
// characters: deterministic, so that a retried ADD finds what a failed one left.
func HostVethName(prefix, namespace, name string) string {
	sum := sha1.Sum([]byte(namespace + "." + name)) //nolint:gosec // see import
	return prefix + hex.EncodeToString(sum[:])[:11]
}

// SubInterfaceName names a trunk sub-interface by its VLAN id, as AWS's VPC CNI does, whatever
// the driver: operators and the local VPC's fabric find it by that name.
func SubInterfaceName(vlan int) string { return subInterfacePrefix + strconv.Itoa(vlan) }

const subInterfacePrefix = "vlan.eth."

// isSubInterfaceName reports whether name is SubInterfaceName of some VLAN id.
func isSubInterfaceName(name string) bool {
	id, ok := strings.CutPrefix(name, subInterfacePrefix)
	n, err := strconv.Atoi(id)
	return ok && err == nil && SubInterfaceName(n) == name
}
