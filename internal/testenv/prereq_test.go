package testenv

import (
	"os"
	"strings"
	"testing"
)

// TestPrereqsAreInstalledBySetup: every Debian package a prerequisite names is in
// hack/packages.txt, so that `make test` (hack/setup.sh) installs it on a fresh machine.
func TestPrereqsAreInstalledBySetup(t *testing.T) {
	data, err := os.ReadFile("../../hack/packages.txt")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for line := range strings.Lines(string(data)) {
		if f := strings.Fields(strings.SplitN(line, "#", 2)[0]); len(f) > 0 {
			listed[f[0]] = true
		}
	}
	for _, p := range AllPrereqs {
		if p.Package != "" && !listed[p.Package] {
			t.Errorf("prerequisite %v names Debian package %s, which hack/packages.txt does not list", p.Commands, p.Package)
		}
	}
}

// TestMissing names exactly what is absent.
func TestMissing(t *testing.T) {
	p := Prereq{Commands: []string{"go", "podsg-no-such-command"}, Files: []string{"/", "/podsg-no-such-file"}, Users: []string{"root", "podsg-no-such-user"}}
	want := "command podsg-no-such-command, /podsg-no-such-file, user podsg-no-such-user"
	if got := p.Missing(); got != want {
		t.Errorf("Missing() = %q, want %q", got, want)
	}
	if got := GoToolchain.Missing(); got != "" {
		t.Errorf("the go command runs this test, yet Missing() = %q", got)
	}
}
