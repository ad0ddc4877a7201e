// Package apierr owns the EC2 API error: an error code such as
// InvalidGroup.NotFound, a message and the HTTP status it is sent with. The
// domain (state) returns these and the protocol layer (query) renders them.
package apierr
