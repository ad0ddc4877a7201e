package cloud

import (
	"fmt"
	"strings"
)

// InstanceID extracts the EC2 instance id from a providerID such as aws:///us-west-2a/i-0abc.
func InstanceID(providerID string) (string, error) {
	rest, ok := strings.CutPrefix(providerID, "aws://")
	if !ok {
		return "", fmt.Errorf("providerID %q is not an AWS one (aws:///<zone>/<instance-id>)", providerID)
	}
	id := rest[strings.LastIndex(rest, "/")+1:]
	if !strings.HasPrefix(id, "i-") {
		return "", fmt.Errorf("providerID %q names no EC2 instance", providerID)
	}
	return id, nil
}
