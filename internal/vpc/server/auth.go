package server

import (
	"net/http"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Sessions resolves temporary credentials: the secret key of a temporary
// access key id and who holds it, given the session token sent with it
// (X-Amz-Security-Token). It answers InvalidClientTokenId for a token it
// did not issue, ExpiredToken for an expired one.
type Sessions interface {
	Resolve(accessKeyID, sessionToken string) (secret string, caller query.Caller, err error)
}

const securityTokenHeader = "X-Amz-Security-Token" //nolint:gosec // a header name, not a credential

// authenticate checks the request's signature and says who made it.
// Temporary credentials are always checked: the server issued their
// secret, so it can. Long-term keys are checked when Credentials are
// configured; otherwise any (or no) signature is the account's root.
func (s *Server) authenticate(r *http.Request, body []byte, unsigned bool) (query.Caller, error) {
	if unsigned {
		return query.Caller{Account: state.AccountID, Anonymous: true}, nil
	}
	now := s.opts.Clock.Now()
	if token := r.Header.Get(securityTokenHeader); token != "" {
		a, ok := parseAuthorization(r.Header.Get("Authorization"))
		if !ok {
			e := errAuth
			return query.Caller{}, &e
		}
		if s.opts.Sessions == nil {
			return query.Caller{}, InvalidToken()
		}
		secret, caller, err := s.opts.Sessions.Resolve(a.accessKey, token)
		if err != nil {
			return query.Caller{}, err
		}
		if err := verifySigV4(r, body, Credentials{a.accessKey: secret}, now); err != nil {
			return query.Caller{}, err
		}
		return caller, nil
	}
	a, signed := parseAuthorization(r.Header.Get("Authorization"))
	if s.opts.Credentials != nil {
		if err := verifySigV4(r, body, s.opts.Credentials, now); err != nil {
			return query.Caller{}, err
		}
	}
	if !signed {
		a.accessKey = ""
	}
	return query.Root(state.AccountID, a.accessKey), nil
}

// InvalidToken is the error of a session token the server did not issue.
func InvalidToken() *apierr.Error {
	return &apierr.Error{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid.", Status: http.StatusForbidden}
}

// ExpiredToken is the error of an expired session token.
func ExpiredToken() *apierr.Error {
	return &apierr.Error{Code: "ExpiredToken", Message: "The security token included in the request is expired", Status: http.StatusBadRequest}
}
