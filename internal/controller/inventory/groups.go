package inventory

import (
	"slices"
	"strings"
)

// SortedGroups returns groups sorted, each once: a branch ENI is parked and found again by its
// exact set of security groups, whatever order admission listed them in.
func SortedGroups(groups []string) []string {
	if groups == nil {
		return nil
	}
	out := slices.Clone(groups)
	slices.Sort(out)
	return slices.Compact(out)
}

// GroupsKey names a set of security groups: the sorted ids, comma-separated. "" for none.
func GroupsKey(groups []string) string { return strings.Join(SortedGroups(groups), ",") }

// SameGroups reports whether two lists name the same set of groups. An unknown set (nil)
// is the same as no other.
func SameGroups(a, b []string) bool { return a != nil && b != nil && GroupsKey(a) == GroupsKey(b) }
