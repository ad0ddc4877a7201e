package ec2

import (
	"errors"
	"net/http"
	"strings"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/podsg/podsg/internal/cloud"
)

// classify turns an SDK error into a *cloud.APIError whose Kind says what a caller should do.
func classify(action string, err error) error {
	if err == nil {
		return nil
	}
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return err // transport or context error: the caller sees it as is
	}
	return &cloud.APIError{Op: action, Code: apiErr.ErrorCode(), Message: apiErr.ErrorMessage(), Kind: kindOf(apiErr.ErrorCode(), statusOf(err))}
}

func statusOf(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// Codes EC2 documents, grouped by what a caller can do about them.
var (
	throttledCodes = map[string]bool{"RequestLimitExceeded": true, "Throttling": true, "ThrottlingException": true, "RequestThrottled": true}
	quotaCodes     = map[string]bool{
		"InsufficientFreeAddressesInSubnet": true, "AttachmentLimitExceeded": true,
		"PrivateIpAddressLimitExceeded": true, "SecurityGroupsPerInterfaceLimitExceeded": true,
		"RulesPerSecurityGroupLimitExceeded": true, "NetworkInterfaceLimitExceeded": true,
	}
	conflictCodes = map[string]bool{
		"InvalidNetworkInterface.InUse": true, "DependencyViolation": true, "IncorrectState": true,
		"InvalidAttachment.InUse": true, "IdempotentParameterMismatch": true, "InvalidIPAddress.InUse": true,
	}
	invalidCodes = map[string]bool{
		"InvalidParameterValue": true, "InvalidParameter": true, "MissingParameter": true,
		"InvalidParameterCombination": true, "UnknownParameter": true, "InvalidAction": true,
		"InvalidInput": true, "ValidationError": true,
	}
	unavailableCodes = map[string]bool{"InternalError": true, "Unavailable": true, "ServiceUnavailable": true, "InternalFailure": true}
)

func kindOf(code string, status int) error {
	switch {
	case throttledCodes[code]:
		return cloud.ErrThrottled
	case strings.HasSuffix(code, ".NotFound") || code == "NotFound":
		return cloud.ErrNotFound
	case quotaCodes[code] || strings.HasSuffix(code, "LimitExceeded"):
		return cloud.ErrQuota
	case conflictCodes[code] || strings.HasSuffix(code, ".Duplicate") || strings.HasSuffix(code, ".InUse"):
		return cloud.ErrConflict
	case invalidCodes[code] || strings.HasSuffix(code, ".Malformed"):
		return cloud.ErrInvalid
	case unavailableCodes[code] || status >= http.StatusInternalServerError:
		return cloud.ErrUnavailable
	}
	return nil
}
