package topo

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
)

// NamePrefix starts every namespace, and RootLinkPrefix every root-namespace
// link, the local VPC creates; Cleanup finds its objects by these.
const (
	NamePrefix     = "podsg-"
	RootLinkPrefix = "ps"
)

// RouteProtocol marks the routes the data path installs in the root
// namespace (see /etc/iproute2/rt_protos: 0xfa is free).
const RouteProtocol = 0xfa

// ValidID reports whether id could come from IDFromStateDir, and also test ids ("t" + 5 hex).
func ValidID(id string) bool {
	if len(id) != 6 {
		return false
	}
	for i, c := range id {
		hex := c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
		if !hex && (i != 0 || c != 't') {
			return false
		}
	}
	return true
}

// IDFromStateDir derives the short per-VPC-server id from the state
// directory, so two servers (or tests) with different state dirs never
// share a namespace or link name, and a restarted server finds its own.
func IDFromStateDir(dir string) string {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return hash(dir, 6)
}

// Names derives every kernel object name from the per-server id.
type Names struct{ ID string }

// Prefix starts every namespace of this server.
func (n Names) Prefix() string { return NamePrefix + n.ID + "-" }

// Fabric is the router namespace of a VPC.
func (n Names) Fabric(vpcID string) string { return n.Prefix() + vpcID }

// Instance is the namespace standing for an instance (its "host").
func (n Names) Instance(instanceID string) string { return n.Prefix() + instanceID }

// Trunk is the small namespace terminating a trunk ENI's VXLAN underlay.
func (n Names) Trunk(eniID string) string { return n.Prefix() + "tk-" + eniID }

// RDS is the namespace of a database instance.
func (n Names) RDS(dbID string) string { return n.Prefix() + "rds-" + dbID }

// FabricIf is the fabric-side device of an ENI (15-byte IFNAMSIZ limit,
// hence a hash; ENI ids are unique, so collisions need 2^40 luck).
func FabricIf(eniID string) string { return "f" + hash(eniID, 10) }

// RootLinkPrefix returns the prefix of this server's root-namespace links.
func (n Names) RootLinkPrefix() string { return RootLinkPrefix + n.ID }

// HostIf is the root-namespace device of a host-access ENI.
func (n Names) HostIf(eniID string) string { return n.RootLinkPrefix() + hash(eniID, 6) }

// RouteMetric is the metric of this server's root routes: two servers may
// route the same CIDR, and the metric keeps their routes apart so each
// removes only its own.
func (n Names) RouteMetric() int {
	h := sha256.Sum256([]byte(n.ID))
	return 4000 + int(h[0])<<8 | int(h[1])
}

func hash(s string, n int) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])[:n]
}
