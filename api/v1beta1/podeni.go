package v1beta1

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// PodENI is one element of the vpc.amazonaws.com/pod-eni pod annotation, in AWS's format, so
// that AWS's VPC CNI reads what podsg-controller writes and podsg's agent reads what AWS's
// controller wrote. Like AWS, no field is omitted when empty.
type PodENI struct {
	ENIID        string `json:"eniId"`
	IfAddress    string `json:"ifAddress"` // the branch ENI's MAC
	PrivateIP    string `json:"privateIp"`
	IPv6Addr     string `json:"ipv6Addr"`
	VLANID       int    `json:"vlanId"`
	SubnetCIDR   string `json:"subnetCidr"`
	SubnetV6CIDR string `json:"subnetV6Cidr"`
	// AssociationID is spelled as AWS's controller writes it.
	AssociationID string `json:"associationID"`
}

// MarshalPodENIs renders the annotation value.
func MarshalPodENIs(enis []PodENI) (string, error) {
	data, err := json.Marshal(enis)
	if err != nil {
		return "", fmt.Errorf("encoding the %s annotation: %w", AnnotationPodENI, err)
	}
	return string(data), nil
}

// ParsePodENIs decodes the annotation value. AWS's older controllers wrote fewer fields, which
// decode as empty; structure that cannot be read is an error naming the annotation.
func ParsePodENIs(s string) ([]PodENI, error) {
	var out []PodENI
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decoding the %s annotation %q: %w", AnnotationPodENI, s, err)
	}
	return out, nil
}

// Subnet sizes EC2 allows for an IPv4 subnet (/16 to /28): a branch ENI's subnet is one.
const (
	minSubnetBits = 16
	maxSubnetBits = 28
)

// Validate checks that an element can wire a pod's IPv4 network: an ENI id, an ENI's MAC
// (48 bits), an address inside the subnet, a subnet EC2 could have, and a VLAN id. The
// error lists everything wrong at once.
func (e PodENI) Validate() error {
	var errs []error
	if !strings.HasPrefix(e.ENIID, "eni-") {
		errs = append(errs, fmt.Errorf("eniId %q is not an ENI id", e.ENIID))
	}
	// net.ParseMAC also reads 64- and 160-bit link addresses, which no ENI has.
	if mac, err := net.ParseMAC(e.IfAddress); err != nil || len(mac) != 6 {
		errs = append(errs, fmt.Errorf("ifAddress %q is not a 48-bit MAC address", e.IfAddress))
	}
	if e.VLANID < 1 || e.VLANID > 4094 {
		errs = append(errs, fmt.Errorf("vlanId %d is outside 1..4094", e.VLANID))
	}
	ip, ipErr := netip.ParseAddr(e.PrivateIP)
	if ipErr != nil || !ip.Is4() {
		errs = append(errs, fmt.Errorf("privateIp %q is not an IPv4 address", e.PrivateIP))
	}
	subnet, err := netip.ParsePrefix(e.SubnetCIDR)
	switch {
	case err != nil || !subnet.Addr().Is4():
		errs = append(errs, fmt.Errorf("subnetCidr %q is not an IPv4 CIDR", e.SubnetCIDR))
	case subnet.Bits() < minSubnetBits || subnet.Bits() > maxSubnetBits:
		errs = append(errs, fmt.Errorf("subnetCidr %s is not a VPC subnet: EC2 subnets are /%d to /%d", subnet, minSubnetBits, maxSubnetBits))
	case ipErr == nil && !subnet.Contains(ip):
		errs = append(errs, fmt.Errorf("privateIp %s is outside subnetCidr %s", ip, subnet))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid %s element: %w", AnnotationPodENI, errors.Join(errs...))
	}
	return nil
}
