package rds

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/podsg/podsg/internal/vpc/resolver"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/podsg/podsg/internal/vpc/rdsiam"
)

func TestRenderHBA(t *testing.T) {
	const initdb = "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	const iam = "host all +rds_iam 0.0.0.0/0 pam pamservice=podsg-abc123-rds-db\n"
	tests := map[string]struct {
		current, service, want string
	}{
		"fresh, password only":      {initdb, "", initdb + hbaMarker + legacyHBA},
		"fresh, IAM on":             {initdb, "podsg-abc123-rds-db", initdb + hbaMarker + iam + legacyHBA},
		"saved before the marker":   {initdb + legacyHBA, "", initdb + hbaMarker + legacyHBA},
		"legacy, IAM on":            {initdb + legacyHBA, "podsg-abc123-rds-db", initdb + hbaMarker + iam + legacyHBA},
		"IAM switched off":          {initdb + hbaMarker + iam + legacyHBA, "", initdb + hbaMarker + legacyHBA},
		"rewritten twice, the same": {initdb + hbaMarker + iam + legacyHBA, "podsg-abc123-rds-db", initdb + hbaMarker + iam + legacyHBA},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := renderHBA(tc.current, tc.service); got != tc.want {
				t.Errorf("renderHBA =\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestRemovePAMServices(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"podsg-abc123-rds-db1", "podsg-abc123-rds-db2", "podsg-def456-rds-db1", "podsg-abc123-vpc", "sshd"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := removePAMServices(dir, "podsg-abc123-"); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"podsg-abc123-vpc", "podsg-def456-rds-db1", "sshd"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}

func TestResourceIDs(t *testing.T) {
	a, b := newResourceID(fixedBytes(1)), newResourceID(fixedBytes(2))
	if len(a) != len("db-")+resourceIDLen || a[:3] != "db-" || a == b {
		t.Errorf("newResourceID = %q, %q: want db- and 26 characters, distinct", a, b)
	}
	db := &DBInstance{ID: "x"}
	if legacyResourceID(db) != legacyResourceID(&DBInstance{ID: "x"}) || legacyResourceID(db) == legacyResourceID(&DBInstance{ID: "y"}) {
		t.Error("legacyResourceID is not a stable function of the instance")
	}
}

type fixedBytes byte

func (f fixedBytes) Read(b []byte) {
	for i := range b {
		b[i] = byte(f)
	}
}

// tokenFor accepts exactly one token per user and records what it was asked.
type tokenFor map[string]string

func (f tokenFor) Check(token string, target rdsiam.Target) error {
	if f[target.User] != token || target.Host != resolver.RDSEndpoint("iam", "us-west-2") || target.Port != 5432 || target.ResourceID != "db-RES" {
		return fmt.Errorf("no: %s for %+v", token, target)
	}
	return nil
}

// TestAuthHelperOverTheSocket runs the helper's side (as pam_script's script does) against
// the server's socket: the server's answer is the helper's, and a database with IAM
// authentication off lets nobody in this way.
func TestAuthHelperOverTheSocket(t *testing.T) {
	m := &Manager{opts: Options{Dir: t.TempDir(), Region: "us-west-2", Tokens: tokenFor{"alice": "good-token"}}, log: quietLog, authN: newAuthMetric()}
	for _, db := range []*DBInstance{
		{ID: "iam", Address: "10.0.1.4", Port: 5432, ResourceID: "db-RES", IAMAuth: true},
		{ID: "noiam", Address: "10.0.1.4", Port: 5432, ResourceID: "db-RES"},
	} {
		if err := m.save(db); err != nil {
			t.Fatal(err)
		}
	}
	l, err := m.listenAuth(os.Getuid(), os.Getgid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	tests := map[string]struct {
		db, user, token string
		ok              bool
	}{
		"good token":       {"iam", "alice", "good-token", true},
		"other token":      {"iam", "alice", "bad-token", false},
		"other user":       {"iam", "bob", "good-token", false},
		"IAM auth off":     {"noiam", "alice", "good-token", false},
		"unknown database": {"nope", "alice", "good-token", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"PAM_USER": tc.user, "PAM_AUTHTOK": tc.token}
			err := AuthHelper(t.Context(), m.authSocket(), tc.db, func(k string) string { return env[k] })
			if (err == nil) != tc.ok {
				t.Fatalf("AuthHelper = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	// The server counts before it answers, so every check is counted by now.
	if a, r := testutil.ToFloat64(m.authN.WithLabelValues(resultAccepted)), testutil.ToFloat64(m.authN.WithLabelValues(resultRefused)); a != 1 || r != 4 {
		t.Errorf("podsg_vpc_rds_iam_authentications_total: accepted %v, refused %v; want 1 and 4", a, r)
	}
}

func TestPAMSafe(t *testing.T) {
	for dir, ok := range map[string]bool{"/var/lib/podsg-vpc/rds": true, "/tmp/podsg-rdsiam-123/vpc/rds": true, "/var/lib/my vpc/rds": false, "/tmp/a$b/rds": false, "/tmp/[x]": false} {
		if err := pamSafe(dir); (err == nil) != ok {
			t.Errorf("%s: pamSafe = %v, want ok=%v", dir, err, ok)
		}
	}
	if err := (&Manager{opts: Options{Dir: "/var/lib/x"}}).iamAuthReady(); err == nil {
		t.Error("ready without a token checker")
	}
}
