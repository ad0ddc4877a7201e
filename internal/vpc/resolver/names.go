package resolver

import (
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Address is the VPC resolver's address in a VPC: its CIDR's base address + 2, one of the five
// addresses of each subnet that the VPC's IPAM never hands out.
func Address(vpcCIDR netip.Prefix) netip.Addr {
	return vpcCIDR.Masked().Addr().Next().Next()
}

// EndpointAddress is the address of the local VPC's interface endpoint in a VPC: its CIDR's
// base address + 3, the fourth address of a subnet that the VPC's IPAM never hands out (AWS
// reserves it "for future use"), so it collides with no ENI. Every ENI reaches it through the
// fabric, a pod on a branch ENI too, which 169.254.169.254 (inside its node) is not.
func EndpointAddress(vpcCIDR netip.Prefix) netip.Addr {
	return Address(vpcCIDR).Next()
}

// EndpointServices are the services whose regional names the resolver answers with
// EndpointAddress, as the private DNS names of AWS's interface endpoints (com.amazonaws.REGION.sts,
// …) do: what the local VPC serves (IAM too, which on AWS is global).
var EndpointServices = []string{"ec2", "iam", "rds", "sts"}

// ServiceEndpoint is service's regional hostname, e.g. sts.us-west-2.amazonaws.com.
func ServiceEndpoint(service, region string) string {
	return strings.ToLower(service) + "." + region + ".amazonaws.com"
}

// RDSEndpoint is the endpoint hostname of DB instance id: the identifier in lower case, a
// label fixed per account and region (RDS's looks like c9akciq32rwe), the region.
func RDSEndpoint(id, region string) string {
	return strings.ToLower(id) + "." + rdsLabel(region) + "." + region + ".rds.amazonaws.com"
}

// rdsLabel derives the account's per-region endpoint label, 12 lower-case characters as on RDS.
func rdsLabel(region string) string {
	sum := sha256.Sum256([]byte(state.AccountID + "/" + region))
	return strings.ToLower(base32.StdEncoding.EncodeToString(sum[:])[:12])
}

// rdsTagPrefix is how the local RDS tags its instances' ENIs (topo.AttachTag "rds:ID").
const rdsTagPrefix = "rds:"

// Records are the names one VPC's resolver answers: fully qualified, lower case, with the
// trailing dot.
type Records struct {
	A   map[string]netip.Addr
	PTR map[string]string
}

// RecordsOf computes the records of a VPC from its wired network interfaces: every private
// address gets its private DNS name (and the reverse name), every RDS instance's ENI its
// endpoint hostname, and the services of EndpointServices the interface endpoint's address.
// Addresses that no interface holds have no name.
func RecordsOf(vpc *topo.VPC, region string) *Records {
	r := &Records{A: map[string]netip.Addr{}, PTR: map[string]string{}}
	for _, svc := range EndpointServices {
		r.A[dns.Fqdn(ServiceEndpoint(svc, region))] = EndpointAddress(vpc.CIDR)
	}
	for _, p := range vpc.Ports {
		for _, a := range p.IPs {
			if !a.Is4() {
				continue
			}
			name := dns.Fqdn(strings.ToLower(state.PrivateDNSName(region, a.String())))
			r.A[name] = a
			if rev, err := dns.ReverseAddr(a.String()); err == nil {
				r.PTR[rev] = name
			}
		}
		if id, ok := strings.CutPrefix(p.ENI.Tags[topo.AttachTag], rdsTagPrefix); ok && p.Kind == topo.KindRDS && len(p.IPs) > 0 {
			r.A[dns.Fqdn(RDSEndpoint(id, region))] = p.IPs[0]
		}
	}
	return r
}
