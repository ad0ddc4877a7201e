// Package limits knows how many branch ENIs a trunk on each EC2 instance type can carry. The
// numbers come from the shared instance-type data (internal/cloud/instancetypes, types.json)
// with an optional overrides file, so that a new instance type needs a file, not a release.
package limits

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/cloud/instancetypes"
)

// Table maps instance types to branch ENI limits.
type Table struct {
	exact    map[string]int
	families map[string]int // "t3" for "t3.*"
}

// Load returns the built-in table, overlaid with overridesFile when it is not "".
func Load(overridesFile string) (*Table, error) {
	t := &Table{exact: map[string]int{}, families: map[string]int{}}
	for _, it := range instancetypes.All() {
		t.exact[it.Name] = it.BranchENIs
		if !it.Trunking {
			t.exact[it.Name] = 0
		}
	}
	if overridesFile == "" {
		return t, nil
	}
	data, err := os.ReadFile(overridesFile)
	if err != nil {
		return nil, fmt.Errorf("reading instance limits overrides: %w", err)
	}
	if err := t.parse(data); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", overridesFile, err)
	}
	return t, nil
}

// MustDefault returns the built-in table; it cannot fail since the data is compiled in and
// validated when the program starts.
func MustDefault() *Table {
	t, err := Load("")
	if err != nil {
		panic(err)
	}
	return t
}

// Branches returns the branch ENI limit of an instance type, and whether the type is known.
// A known type with limit 0 does not support trunking.
func (t *Table) Branches(instanceType string) (int, bool) {
	if n, ok := t.exact[instanceType]; ok {
		return n, true
	}
	family, _, _ := strings.Cut(instanceType, ".")
	n, ok := t.families[family]
	return n, ok
}

// Set overrides one entry; tests use it for small limits.
func (t *Table) Set(instanceType string, branches int) { t.exact[instanceType] = branches }

func (t *Table) parse(data []byte) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return fmt.Errorf("line %d: want \"instance-type branch-limit\", got %q", line, text)
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil || n < 0 {
			return fmt.Errorf("line %d: bad branch limit %q", line, fields[1])
		}
		if family, ok := strings.CutSuffix(fields[0], ".*"); ok {
			t.families[family] = n
		} else {
			t.exact[fields[0]] = n
		}
	}
	return sc.Err()
}
