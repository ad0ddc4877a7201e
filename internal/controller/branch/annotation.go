package branch

import (
	"encoding/json"
	"fmt"
)

// ENIDetails is one element of the vpc.amazonaws.com/pod-eni annotation, in AWS's format so
// that AWS's VPC CNI can read what podsg writes and podsg can read what AWS's controller wrote.
// Like AWS, no field is omitted when empty.
type ENIDetails struct {
	ENIID        string `json:"eniId"`
	IfAddress    string `json:"ifAddress"`
	PrivateIP    string `json:"privateIp"`
	IPv6Addr     string `json:"ipv6Addr"`
	VLANID       int    `json:"vlanId"`
	SubnetCIDR   string `json:"subnetCidr"`
	SubnetV6CIDR string `json:"subnetV6Cidr"`
	// AssociationID is spelled as AWS's controller writes it.
	AssociationID string `json:"associationID"`
}

// EncodeAnnotation renders the annotation value.
func EncodeAnnotation(enis []ENIDetails) (string, error) {
	data, err := json.Marshal(enis)
	if err != nil {
		return "", fmt.Errorf("encoding pod-eni annotation: %w", err)
	}
	return string(data), nil
}

// DecodeAnnotation parses the annotation value; AWS's older controllers wrote fewer fields,
// which decode as empty.
func DecodeAnnotation(s string) ([]ENIDetails, error) {
	var out []ENIDetails
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decoding pod-eni annotation: %w", err)
	}
	return out, nil
}
