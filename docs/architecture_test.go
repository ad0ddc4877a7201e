// Package docs holds the project's documentation; its test keeps the package table of
// architecture.md true to the code.
package docs

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/podsg/podsg/"

// row is `| `pkg` | holds | imported by |`, the importers each in backquotes.
var row = regexp.MustCompile("^\\| `([a-z0-9/]+)` \\| (.+) \\| (.+) \\|$")

// TestPackageTable: architecture.md's package table names every package of api/, config and
// internal/ exactly once, names no package that does not exist, and its "imported by" cells
// list exactly the packages whose non-test files import each one.
func TestPackageTable(t *testing.T) {
	doc, err := os.ReadFile("architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	table := map[string][]string{}
	for line := range strings.Lines(string(doc)) {
		m := row.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || !isOurs(m[1]) {
			continue
		}
		if _, dup := table[m[1]]; dup {
			t.Errorf("%s has two rows", m[1])
		}
		table[m[1]] = backquoted(m[3])
	}
	importers := importGraph(t)
	for pkg := range importers {
		if !isOurs(pkg) {
			continue
		}
		got, ok := table[pkg]
		if !ok {
			t.Errorf("%s has no row in architecture.md's package table", pkg)
			continue
		}
		if want := importers[pkg]; !slices.Equal(got, want) {
			t.Errorf("%s: the table says it is imported by %v; the code, by %v", pkg, got, want)
		}
	}
	for pkg := range table {
		if _, ok := importers[pkg]; !ok {
			t.Errorf("architecture.md names %s, which is not a package", pkg)
		}
	}
}

func isOurs(pkg string) bool {
	return pkg == "config" || strings.HasPrefix(pkg, "api/") || strings.HasPrefix(pkg, "internal/")
}

func backquoted(cell string) []string {
	var out []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// importGraph maps every package directory of the module (relative path) to the sorted
// packages whose non-test files import it; a package nothing imports maps to an empty list.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	importers := map[string][]string{}
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != ".." && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
			return filepath.SkipDir
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if pkg == nil || (err != nil && len(pkg.TestGoFiles)+len(pkg.XTestGoFiles) == 0) {
			return nil // a directory without Go files is no package
		}
		self := filepath.ToSlash(strings.TrimPrefix(path, "../"))
		if _, ok := importers[self]; !ok {
			importers[self] = nil
		}
		for _, imp := range pkg.Imports {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				importers[dep] = append(importers[dep], self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range importers {
		slices.Sort(v)
	}
	return importers
}
