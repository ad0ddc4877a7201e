package apierr

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an EC2 API error as the client sees it.
type Error struct {
	Code    string
	Message string
	// Status is the HTTP status; zero means 400.
	Status int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus returns the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// New returns a client error (HTTP 400) with a formatted message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithStatus returns a copy of e sent with the given HTTP status.
func (e *Error) WithStatus(status int) *Error {
	c := *e
	c.Status = status
	return &c
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// HasCode reports whether err is an API error with the given code.
func HasCode(err error, code string) bool {
	e, ok := As(err)
	return ok && e.Code == code
}

// Common codes and constructors. Messages follow AWS wording where it is known.
const (
	CodeMissingParameter             = "MissingParameter"
	CodeInvalidParameterValue        = "InvalidParameterValue"
	CodeInvalidParameterCombination  = "InvalidParameterCombination"
	CodeInvalidParameter             = "InvalidParameter"
	CodeDependencyViolation          = "DependencyViolation"
	CodeDryRunOperation              = "DryRunOperation"
	CodeIdempotentParameterMismatch  = "IdempotentParameterMismatch"
	CodeInternalError                = "InternalError"
	CodeRequestLimitExceeded         = "RequestLimitExceeded"
	CodeUnavailable                  = "Unavailable"
	CodeInvalidAction                = "InvalidAction"
	CodeUnsupportedOperation         = "UnsupportedOperation"
	CodeInvalidPaginationToken       = "InvalidPaginationToken"
	CodeAuthFailure                  = "AuthFailure"
	CodeSignatureDoesNotMatch        = "SignatureDoesNotMatch"
	CodeIncorrectState               = "IncorrectState"
	CodeInsufficientFreeAddresses    = "InsufficientFreeAddressesInSubnet"
	CodePrivateIPAddressLimit        = "PrivateIpAddressLimitExceeded"
	CodeAttachmentLimitExceeded      = "AttachmentLimitExceeded"
	CodeSecurityGroupsPerENIExceeded = "SecurityGroupsPerInterfaceLimitExceeded"
	CodeRulesPerSGExceeded           = "RulesPerSecurityGroupLimitExceeded"
)

// Missing reports a required parameter that was not sent.
func Missing(param string) *Error {
	return New(CodeMissingParameter, "The request must contain the parameter %s", param)
}

// InvalidValue reports a parameter value that cannot be used.
func InvalidValue(format string, args ...any) *Error {
	return New(CodeInvalidParameterValue, format, args...)
}

// Combination reports parameters that may not be used together.
func Combination(format string, args ...any) *Error {
	return New(CodeInvalidParameterCombination, format, args...)
}

// Dependency reports a resource that is still used by another.
func Dependency(format string, args ...any) *Error {
	return New(CodeDependencyViolation, format, args...)
}

// DryRun is returned when a DryRun request would have succeeded.
func DryRun() *Error {
	return &Error{Code: CodeDryRunOperation, Message: "Request would have succeeded, but DryRun flag is set.", Status: http.StatusPreconditionFailed}
}

// Internal hides an unexpected failure behind a 500 InternalError.
func Internal() *Error {
	return &Error{Code: CodeInternalError, Message: "An internal error has occurred", Status: http.StatusInternalServerError}
}

// Throttled is RequestLimitExceeded as EC2 sends it.
func Throttled() *Error {
	return &Error{Code: CodeRequestLimitExceeded, Message: "Request limit exceeded.", Status: http.StatusServiceUnavailable}
}
