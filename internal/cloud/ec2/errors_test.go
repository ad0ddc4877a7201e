package ec2

import (
	"errors"
	"testing"

	"github.com/podsg/podsg/internal/cloud"
)

func TestKindOf(t *testing.T) {
	tests := map[string]struct {
		code   string
		status int
		want   error
	}{
		"throttled":                 {"RequestLimitExceeded", 503, cloud.ErrThrottled},
		"eni not found":             {"InvalidNetworkInterfaceID.NotFound", 400, cloud.ErrNotFound},
		"group not found":           {"InvalidGroup.NotFound", 400, cloud.ErrNotFound},
		"association not found":     {"InvalidAssociationID.NotFound", 400, cloud.ErrNotFound},
		"subnet full":               {"InsufficientFreeAddressesInSubnet", 400, cloud.ErrQuota},
		"too many groups":           {"SecurityGroupsPerInterfaceLimitExceeded", 400, cloud.ErrQuota},
		"attachment limit":          {"AttachmentLimitExceeded", 400, cloud.ErrQuota},
		"eni in use":                {"InvalidNetworkInterface.InUse", 400, cloud.ErrConflict},
		"dependency":                {"DependencyViolation", 400, cloud.ErrConflict},
		"duplicate rule":            {"InvalidPermission.Duplicate", 400, cloud.ErrConflict},
		"bad parameter":             {"InvalidParameterValue", 400, cloud.ErrInvalid},
		"malformed id":              {"InvalidNetworkInterfaceID.Malformed", 400, cloud.ErrInvalid},
		"internal error":            {"InternalError", 500, cloud.ErrUnavailable},
		"unknown 5xx":               {"SomethingNew", 502, cloud.ErrUnavailable},
		"unknown 4xx is unlabelled": {"AuthFailure", 401, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := kindOf(tc.code, tc.status); !errors.Is(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Errorf("kindOf(%q, %d) = %v, want %v", tc.code, tc.status, got, tc.want)
			}
		})
	}
}
