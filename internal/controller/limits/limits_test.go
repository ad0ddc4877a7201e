package limits

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBranches(t *testing.T) {
	dir := t.TempDir()
	overrides := filepath.Join(dir, "overrides.txt")
	if err := os.WriteFile(overrides, []byte("m5.large 3 # smaller\nx9.big 42\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tab, err := Load(overrides)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		typ   string
		want  int
		known bool
	}{
		"built-in":         {"m5.24xlarge", 107, true},
		"r5 as m5":         {"r5.xlarge", 18, true},
		"family, no trunk": {"t3.medium", 0, true},
		"override wins":    {"m5.large", 3, true},
		"override adds":    {"x9.big", 42, true},
		"unknown":          {"z1.nano", 0, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			n, ok := tab.Branches(tc.typ)
			if n != tc.want || ok != tc.known {
				t.Fatalf("Branches(%s) = %d, %v; want %d, %v", tc.typ, n, ok, tc.want, tc.known)
			}
		})
	}
	if err := os.WriteFile(overrides, []byte("m5.large nine\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(overrides); err == nil {
		t.Fatal("want a parse error")
	}
}
