package rds

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
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
