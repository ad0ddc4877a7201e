package sts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/idgen"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Session is what a session token carries.
type Session struct {
	AccessKeyID string    `json:"k"`
	RoleName    string    `json:"r"`
	RoleID      string    `json:"i"`
	SessionName string    `json:"s"`
	Issued      time.Time `json:"t"`
	Expires     time.Time `json:"e"`
	// Source is how it was obtained: "web-identity", "assume-role" or "ec2".
	Source string `json:"src"`
}

// Credentials are temporary credentials as STS returns them.
type Credentials struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
}

// ARN is the session's assumed-role ARN.
func (s *Session) ARN() string {
	return "arn:aws:sts::" + state.AccountID + ":assumed-role/" + s.RoleName + "/" + s.SessionName
}

// Caller is the session as the caller of a request.
func (s *Session) Caller() query.Caller {
	return query.Caller{Account: state.AccountID, ARN: s.ARN(), UserID: s.RoleID + ":" + s.SessionName,
		AccessKeyID: s.AccessKeyID, RoleName: s.RoleName, SessionName: s.SessionName}
}

// keys mints and resolves session tokens under one HMAC key.
type keys struct {
	key []byte
	ids idgen.Source
	now func() time.Time
}

const tokenPrefix = "podsg-sts1." //nolint:gosec // the format marker of session tokens, not a credential

// mint returns credentials for sess (its access key id is filled in).
func (k *keys) mint(sess Session) Credentials {
	sess.AccessKeyID = "ASIA" + strings.ToUpper(idgen.Hex(k.ids, 16))
	payload, _ := json.Marshal(sess)
	p := base64.RawURLEncoding.EncodeToString(payload)
	token := tokenPrefix + p + "." + base64.RawURLEncoding.EncodeToString(k.mac("token", p))
	return Credentials{AccessKeyID: sess.AccessKeyID, SecretAccessKey: k.secret(p), SessionToken: token, Expiration: sess.Expires}
}

func (k *keys) mac(purpose, payload string) []byte {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte(purpose + "|" + payload))
	return m.Sum(nil)
}

// secret is the secret access key of a session: derived from its token, so
// nothing needs storing.
func (k *keys) secret(payload string) string {
	return base64.StdEncoding.EncodeToString(k.mac("secret", payload))[:40]
}

// Resolve implements server.Sessions.
func (k *keys) Resolve(accessKeyID, token string) (string, query.Caller, error) {
	sess, p, err := k.parse(token)
	if err != nil || sess.AccessKeyID != accessKeyID {
		return "", query.Caller{}, invalidToken()
	}
	if !k.now().Before(sess.Expires) {
		return "", query.Caller{}, expiredToken()
	}
	return k.secret(p), sess.Caller(), nil
}

func (k *keys) parse(token string) (*Session, string, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok {
		return nil, "", fmt.Errorf("not a local STS token")
	}
	p, sig, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, "", fmt.Errorf("malformed token")
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, k.mac("token", p)) {
		return nil, "", fmt.Errorf("bad token signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, "", fmt.Errorf("malformed token")
	}
	var sess Session
	if err := json.Unmarshal(raw, &sess); err != nil {
		return nil, "", fmt.Errorf("malformed token")
	}
	return &sess, p, nil
}

func invalidToken() *apierr.Error {
	return &apierr.Error{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid.", Status: http.StatusForbidden}
}

func expiredToken() *apierr.Error {
	return &apierr.Error{Code: "ExpiredToken", Message: "The security token included in the request is expired", Status: http.StatusBadRequest}
}
