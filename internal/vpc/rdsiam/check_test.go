package rdsiam_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"

	"github.com/podsg/podsg/internal/iampolicy"
	"github.com/podsg/podsg/internal/vpc/query"
	"github.com/podsg/podsg/internal/vpc/rdsiam"
)

const (
	region  = "us-east-1"
	account = "000000000000"
	dbi     = "db-ABCDEFGHIJKLMNOPQRSTUVWXY0"
)

// keys are the access keys the tests sign with: a long-term key, temporary credentials whose
// session token must come with them, and the key of the awscli fixture.
type keys map[string]struct {
	secret, session string
	caller          query.Caller
	unverified      bool
}

func (k keys) Resolve(id, session string) (rdsiam.Key, error) {
	e, ok := k[id]
	if !ok || e.session != session {
		return rdsiam.Key{}, errors.New("the security token included in the request is invalid")
	}
	return rdsiam.Key{Secret: e.secret, Caller: e.caller, Unverified: e.unverified}, nil
}

// policies authorises with the real evaluator: each role's identity policy document.
type policies map[string]string

func (p policies) Authorize(c query.Caller, action, resource string, _ map[string][]string) (iampolicy.Decision, error) {
	doc, ok := p[c.RoleName]
	if !ok {
		return iampolicy.ImplicitDeny, nil
	}
	pol, err := iampolicy.Parse(doc, iampolicy.Identity)
	if err != nil {
		return iampolicy.ImplicitDeny, err
	}
	return iampolicy.Evaluate(&iampolicy.Request{Action: action, Resource: resource, Context: iampolicy.NewContext(nil)}, pol), nil
}

func role(name string) query.Caller {
	return query.Caller{Account: account, ARN: "arn:aws:sts::" + account + ":assumed-role/" + name + "/s", RoleName: name, SessionName: "s"}
}

const allowAlice = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect",
	"Resource":"arn:aws:rds-db:us-east-1:000000000000:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/alice"}]}`

const allowOtherDB = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect",
	"Resource":"arn:aws:rds-db:us-east-1:000000000000:dbuser:db-OTHER/*"}]}`

const denyAll = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:*","Resource":"*"},
	{"Effect":"Deny","Action":"rds-db:connect","Resource":"*"}]}`

var testKeys = keys{
	"AKIAALLOWED":       {secret: "allowed-secret", caller: role("rds-db-access")},
	"ASIATEMPORARY":     {secret: "temp-secret", session: "sts-session", caller: role("rds-db-access")},
	"AKIANOPERMISSION":  {secret: "np-secret", caller: role("other-db")},
	"AKIADENIED":        {secret: "denied-secret", caller: role("denied")},
	"AKIAUNVERIFIED":    {caller: role("rds-db-access"), unverified: true},
	"AKIAEXAMPLEAWSCLI": {secret: "cli-secret-key", session: "session-token-from-sts", caller: role("rds-db-access")},
}

var testPolicies = policies{"rds-db-access": allowAlice, "other-db": allowOtherDB, "denied": denyAll}

// sdkToken is a token from aws-sdk-go-v2's BuildAuthToken, the Go SDK's generate-db-auth-token.
func sdkToken(t *testing.T, endpoint, user, id, secret, session string) string {
	t.Helper()
	tok, err := auth.BuildAuthToken(context.Background(), endpoint, region, user, credentials.NewStaticCredentialsProvider(id, secret, session))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestCheck(t *testing.T) {
	alice := rdsiam.Target{Host: "10.0.1.4", Port: 5432, ResourceID: dbi, User: "alice"}
	good := sdkToken(t, "10.0.1.4:5432", "alice", "AKIAALLOWED", "allowed-secret", "")
	cli, err := os.ReadFile("testdata/awscli-token.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The awscli token was made by `aws rds generate-db-auth-token` at its X-Amz-Date.
	cliTime := time.Date(2026, 12, 2, 8, 5, 1, 0, time.UTC)
	now := time.Now()
	tests := map[string]struct {
		token  string
		target rdsiam.Target
		now    time.Time
		err    string // "" for accepted
	}{
		"sdk token, long-term key":     {token: good, target: alice},
		"sdk token, temporary creds":   {token: sdkToken(t, "10.0.1.4:5432", "alice", "ASIATEMPORARY", "temp-secret", "sts-session"), target: alice},
		"awscli token":                 {token: strings.TrimSpace(string(cli)), target: alice, now: cliTime.Add(time.Minute)},
		"awscli token after 15 min":    {token: strings.TrimSpace(string(cli)), target: alice, now: cliTime.Add(15 * time.Minute), err: "expired"},
		"expired":                      {token: good, target: alice, now: now.Add(15*time.Minute + time.Second), err: "expired"},
		"dated in the future":          {token: good, target: alice, now: now.Add(-10 * time.Minute), err: "in the future"},
		"other user":                   {token: good, target: rdsiam.Target{Host: "10.0.1.4", Port: 5432, ResourceID: dbi, User: "bob"}, err: `not "bob"`},
		"other host":                   {token: good, target: rdsiam.Target{Host: "10.0.1.5", Port: 5432, ResourceID: dbi, User: "alice"}, err: "not this database's endpoint"},
		"other port":                   {token: good, target: rdsiam.Target{Host: "10.0.1.4", Port: 5433, ResourceID: dbi, User: "alice"}, err: "not this database's endpoint"},
		"other database":               {token: good, target: rdsiam.Target{Host: "10.0.1.4", Port: 5432, ResourceID: "db-ELSE", User: "alice"}, err: "not allowed"},
		"wrong secret":                 {token: sdkToken(t, "10.0.1.4:5432", "alice", "AKIAALLOWED", "guessed", ""), target: alice, err: "signature does not match"},
		"user changed after signing":   {token: strings.Replace(sdkToken(t, "10.0.1.4:5432", "bob", "AKIAALLOWED", "allowed-secret", ""), "DBUser=bob", "DBUser=alice", 1), target: alice, err: "signature does not match"},
		"session token dropped":        {token: dropParam(sdkToken(t, "10.0.1.4:5432", "alice", "ASIATEMPORARY", "temp-secret", "sts-session"), "X-Amz-Security-Token"), target: alice, err: "invalid"},
		"unknown key":                  {token: sdkToken(t, "10.0.1.4:5432", "alice", "AKIAUNKNOWN", "x", ""), target: alice, err: "invalid"},
		"role without the permission":  {token: sdkToken(t, "10.0.1.4:5432", "alice", "AKIANOPERMISSION", "np-secret", ""), target: alice, err: "not allowed"},
		"explicit deny":                {token: sdkToken(t, "10.0.1.4:5432", "alice", "AKIADENIED", "denied-secret", ""), target: alice, err: "not allowed"},
		"unverified key still checked": {token: sdkToken(t, "10.0.1.4:5432", "bob", "AKIAUNVERIFIED", "any", ""), target: rdsiam.Target{Host: "10.0.1.4", Port: 5432, ResourceID: dbi, User: "bob"}, err: "not allowed"},
		"unverified key, allowed":      {token: sdkToken(t, "10.0.1.4:5432", "alice", "AKIAUNVERIFIED", "any", ""), target: alice},
		"a password":                   {token: "secretpass", target: alice, err: "malformed"},
		"other action":                 {token: strings.Replace(good, "Action=connect", "Action=Connect", 1), target: alice, err: "malformed"},
		"expiry over 15 minutes":       {token: strings.Replace(good, "X-Amz-Expires=900", "X-Amz-Expires=901", 1), target: alice, err: "malformed"},
		"other region":                 {token: regionToken(t), target: alice, err: "region"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			at := tc.now
			if at.IsZero() {
				at = now
			}
			c := &rdsiam.Checker{Keys: testKeys, Authorizer: testPolicies, Region: region, Account: account, Now: func() time.Time { return at }}
			err := c.Check(tc.token, tc.target)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.err != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tc.err)
			case tc.err != "" && !strings.Contains(err.Error(), tc.err):
				t.Fatalf("error %q, want one with %q", err, tc.err)
			}
		})
	}
}

func regionToken(t *testing.T) string {
	tok, err := auth.BuildAuthToken(context.Background(), "10.0.1.4:5432", "eu-west-1", "alice", credentials.NewStaticCredentialsProvider("AKIAALLOWED", "allowed-secret", ""))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func dropParam(tok, name string) string {
	base, q, _ := strings.Cut(tok, "?")
	var kept []string
	for _, p := range strings.Split(q, "&") {
		if !strings.HasPrefix(p, name+"=") {
			kept = append(kept, p)
		}
	}
	return base + "?" + strings.Join(kept, "&")
}

func TestResourceARN(t *testing.T) {
	if got, want := rdsiam.ResourceARN("us-east-1", "123456789012", "db-ABC", "metabase"), "arn:aws:rds-db:us-east-1:123456789012:dbuser:db-ABC/metabase"; got != want {
		t.Fatalf("ResourceARN = %s, want %s", got, want)
	}
}
