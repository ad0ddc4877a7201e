package instancetypes

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Type is one instance type's limits.
type Type struct {
	Name string `json:"name"`
	// VCPUs and MemoryMiB are rendered by DescribeInstanceTypes.
	VCPUs     int32 `json:"vcpus"`
	MemoryMiB int64 `json:"memoryMiB"`
	// MaxENIs is the number of network interfaces an instance can attach,
	// including the primary one.
	MaxENIs int `json:"maxENIs"`
	// IPv4PerENI is the number of private IPv4 addresses (primary included)
	// each attached interface may hold.
	IPv4PerENI int `json:"ipv4PerENI"`
	IPv6PerENI int `json:"ipv6PerENI"`
	// BranchENIs is how many branch interfaces may be associated with the
	// instance's trunk interface. AWS does not expose it through the EC2 API;
	// it is the published vpc-resource-controller limit.
	BranchENIs int `json:"branchENIs"`
	// Trunking says whether the type accepts a trunk interface at all.
	Trunking           bool   `json:"trunking"`
	NetworkPerformance string `json:"networkPerformance"`
}

//go:embed types.json
var typesJSON []byte

var (
	byName = map[string]Type{}
	all    []Type
)

func init() {
	// The file is part of the binary; a broken table is a programming error.
	var doc struct {
		Types []Type `json:"types"`
	}
	if err := json.Unmarshal(typesJSON, &doc); err != nil {
		panic(fmt.Sprintf("parsing embedded types.json: %v", err))
	}
	for _, t := range doc.Types {
		if err := t.validate(); err != nil {
			panic(fmt.Sprintf("embedded types.json: %v", err))
		}
		if _, dup := byName[t.Name]; dup {
			panic(fmt.Sprintf("embedded types.json: duplicate %s", t.Name))
		}
		byName[t.Name] = t
		all = append(all, t)
	}
	slices.SortFunc(all, func(a, b Type) int { return strings.Compare(a.Name, b.Name) })
}

func (t Type) validate() error {
	switch {
	case t.Name == "":
		return fmt.Errorf("type without a name")
	case t.MaxENIs < 1 || t.IPv4PerENI < 1:
		return fmt.Errorf("%s: ENI and IPv4 limits must be positive", t.Name)
	case t.Trunking != (t.BranchENIs > 0):
		return fmt.Errorf("%s: trunking must be set exactly when branchENIs > 0", t.Name)
	}
	return nil
}

// Lookup returns the named type.
func Lookup(name string) (Type, bool) {
	t, ok := byName[name]
	return t, ok
}

// All returns every known type sorted by name. The slice is a copy.
func All() []Type {
	return slices.Clone(all)
}
