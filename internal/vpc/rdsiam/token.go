// Package rdsiam checks RDS IAM database authentication tokens as RDS does: a token is a SigV4
// presigned URL (`HOST:PORT/?Action=connect&DBUser=USER&X-Amz-…`) for the service rds-db, made by
// `aws rds generate-db-auth-token` or an SDK's BuildAuthToken from the caller's credentials. It
// is accepted for one database user on one endpoint when its signature is the caller's, it has
// not expired (15 minutes at most), and the caller may rds-db:connect to
// arn:aws:rds-db:REGION:ACCOUNT:dbuser:DBI-RESOURCE-ID/USER. The package is pure: keys and
// policies come through the consumer's interfaces, time through a clock function.
package rdsiam

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signing constants of a connect token.
const (
	algorithm = "AWS4-HMAC-SHA256"
	service   = "rds-db"
	amzDate   = "20060102T150405Z"
	// MaxExpiry is how long a token can be valid: RDS accepts tokens for 15 minutes.
	MaxExpiry = 15 * time.Minute
	// clockSkew is how far in the future a token's date may lie (a client clock ahead of ours).
	clockSkew = 5 * time.Minute
)

// emptyPayloadHash is the payload hash a connect URL is signed with: the SHA-256 of the empty
// body. botocore (awscli, boto3) and aws-sdk-go-v2's BuildAuthToken both sign so (checked by the
// tests on their tokens), not with the UNSIGNED-PAYLOAD of S3's presigned URLs.
const emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// token is a parsed connect token.
type token struct {
	hostPort  string
	query     url.Values
	user      string
	accessKey string
	scopeDate string
	region    string
	date      time.Time
	expires   time.Duration
	session   string
	signature string
}

// parse reads a token's fields and checks its shape; it checks nothing against a database or a key.
func parse(raw string) (*token, error) {
	hostPort, rawQuery, ok := strings.Cut(raw, "?")
	if !ok {
		return nil, fmt.Errorf("not a presigned URL (no query)")
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("malformed query: %w", err)
	}
	for _, k := range []string{"Action", "DBUser", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if len(q[k]) != 1 {
			return nil, fmt.Errorf("want exactly one %s", k)
		}
	}
	if err := checkFixed(q); err != nil {
		return nil, err
	}
	t := &token{hostPort: strings.TrimSuffix(hostPort, "/"), query: q, user: q.Get("DBUser"),
		session: q.Get("X-Amz-Security-Token"), signature: q.Get("X-Amz-Signature")}
	scope := strings.Split(q.Get("X-Amz-Credential"), "/")
	if len(scope) != 5 || scope[3] != service || scope[4] != "aws4_request" {
		return nil, fmt.Errorf("credential scope %q is not ACCESS-KEY/DATE/REGION/%s/aws4_request", q.Get("X-Amz-Credential"), service)
	}
	t.accessKey, t.scopeDate, t.region = scope[0], scope[1], scope[2]
	if t.date, err = time.Parse(amzDate, q.Get("X-Amz-Date")); err != nil || !strings.HasPrefix(q.Get("X-Amz-Date"), t.scopeDate) {
		return nil, fmt.Errorf("date %q does not match the credential scope's %q", q.Get("X-Amz-Date"), t.scopeDate)
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > MaxExpiry {
		return nil, fmt.Errorf("expiry %q is not 1 to %d seconds", q.Get("X-Amz-Expires"), int(MaxExpiry.Seconds()))
	}
	t.expires = time.Duration(secs) * time.Second
	return t, nil
}

// checkFixed checks the parameters every connect token has with the same value.
func checkFixed(q url.Values) error {
	switch {
	case q.Get("Action") != "connect":
		return fmt.Errorf("action %q, want connect", q.Get("Action"))
	case q.Get("X-Amz-Algorithm") != algorithm:
		return fmt.Errorf("algorithm %q, want %s", q.Get("X-Amz-Algorithm"), algorithm)
	case q.Get("X-Amz-SignedHeaders") != "host":
		return fmt.Errorf("signed headers %q, want host", q.Get("X-Amz-SignedHeaders"))
	}
	return nil
}

// signatureMatches reports whether the token was signed with secret.
func (t *token) signatureMatches(secret string) bool {
	key := hmacSHA256([]byte("AWS4"+secret), t.scopeDate)
	for _, s := range []string{t.region, service, "aws4_request"} {
		key = hmacSHA256(key, s)
	}
	scope := strings.Join([]string{t.scopeDate, t.region, service, "aws4_request"}, "/")
	creq := strings.Join([]string{"GET", "/", t.canonicalQuery(), "host:" + t.hostPort + "\n", "host", emptyPayloadHash}, "\n")
	sum := sha256.Sum256([]byte(creq))
	toSign := strings.Join([]string{algorithm, t.date.Format(amzDate), scope, hex.EncodeToString(sum[:])}, "\n")
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	return hmac.Equal([]byte(want), []byte(strings.ToLower(t.signature)))
}

// canonicalQuery is SigV4's canonical query string of everything but the signature.
func (t *token) canonicalQuery() string {
	var parts []string
	for k, vs := range t.query {
		if k == "X-Amz-Signature" {
			continue
		}
		for _, v := range vs {
			parts = append(parts, uriEncode(k)+"="+uriEncode(v))
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "&")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// uriEncode is SigV4's encoding: everything but unreserved characters is percent-encoded.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}
