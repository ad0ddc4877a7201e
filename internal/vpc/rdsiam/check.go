package rdsiam

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/query"
)

// Key is the secret of an access key and who holds it.
type Key struct {
	Secret string
	Caller query.Caller
	// Unverified says the signature is not to be checked: the local VPC without
	// --credentials takes any long-term key as the account's root, as its API does.
	Unverified bool
}

// Keys resolves the access key a token was signed with; sessionToken is the token's
// X-Amz-Security-Token ("" for a long-term key).
type Keys interface {
	Resolve(accessKeyID, sessionToken string) (Key, error)
}

// Authorizer decides whether caller may do action on resource (the local STS).
type Authorizer interface {
	Authorize(caller query.Caller, action, resource string, extra map[string][]string) (iampolicy.Decision, error)
}

// Target is what a connection attempt is for: the database endpoint the client was given,
// the instance's DbiResourceId and the user it logs in as.
type Target struct {
	Host       string
	Port       int
	ResourceID string
	User       string
}

// Checker checks connect tokens.
type Checker struct {
	Keys       Keys
	Authorizer Authorizer
	Region     string
	Account    string
	// Now defaults to time.Now.
	Now func() time.Time
}

// Action is the IAM action a connect token needs.
const Action = "rds-db:connect"

// ResourceARN is the IAM resource of database user user on the instance with DbiResourceId id.
func ResourceARN(region, account, id, user string) string {
	return fmt.Sprintf("arn:aws:rds-db:%s:%s:dbuser:%s/%s", region, account, id, user)
}

// Check returns nil when raw lets target's user connect, else why not. The reason is for the
// server's log: the client is told only that authentication failed, as RDS does.
func (c *Checker) Check(raw string, target Target) error {
	t, err := parse(raw)
	if err != nil {
		return fmt.Errorf("malformed token: %w", err)
	}
	want := net.JoinHostPort(target.Host, strconv.Itoa(target.Port))
	switch {
	case !strings.EqualFold(t.hostPort, want):
		return fmt.Errorf("token is for %s, not this database's endpoint %s", t.hostPort, want)
	case t.user != target.User:
		return fmt.Errorf("token is for database user %q, not %q", t.user, target.User)
	case t.region != c.Region:
		return fmt.Errorf("token is signed for region %s, not %s", t.region, c.Region)
	}
	now := c.now()
	if !now.Before(t.date.Add(t.expires)) {
		return fmt.Errorf("token expired at %s", t.date.Add(t.expires).UTC().Format(time.RFC3339))
	}
	if t.date.After(now.Add(clockSkew)) {
		return fmt.Errorf("token is dated %s, in the future", t.date.UTC().Format(time.RFC3339))
	}
	key, err := c.Keys.Resolve(t.accessKey, t.session)
	if err != nil {
		return fmt.Errorf("access key %s: %w", t.accessKey, err)
	}
	if !key.Unverified && !t.signatureMatches(key.Secret) {
		return fmt.Errorf("signature does not match access key %s", t.accessKey)
	}
	resource := ResourceARN(c.Region, c.Account, target.ResourceID, target.User)
	d, err := c.Authorizer.Authorize(key.Caller, Action, resource, nil)
	if err != nil {
		return fmt.Errorf("evaluating %s's policies: %w", key.Caller.ARN, err)
	}
	if d != iampolicy.Allowed {
		return fmt.Errorf("%s is not allowed %s on %s (%s)", key.Caller.ARN, Action, resource, d)
	}
	return nil
}

func (c *Checker) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}
