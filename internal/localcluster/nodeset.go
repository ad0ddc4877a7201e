package localcluster

import (
	"fmt"
	"slices"
	"strings"
)

// The node list (nodes.json) is the record of every node Up or `node add` started and `node
// remove` has not finished removing: Down stops exactly these.

// indexed fills in the index of records written by a podsg that had none: it numbered its
// nodes 1, 2, … in the order it recorded them.
func indexed(nodes []nodeSpec) []nodeSpec {
	out := slices.Clone(nodes)
	for i := range out {
		if out[i].Index == 0 {
			out[i].Index = i + 1
		}
	}
	return out
}

// wantedIndices are the nodes Up brings up: 1 to want, and every node recorded besides (added
// with `node add`), in order.
func wantedIndices(want int, recorded []nodeSpec) []int {
	var out []int
	for i := 1; i <= want; i++ {
		out = append(out, i)
	}
	for _, n := range indexed(recorded) {
		if !slices.Contains(out, n.Index) {
			out = append(out, n.Index)
		}
	}
	slices.Sort(out)
	return out
}

// nextIndex is the number of a node added to recorded: the smallest one no node has.
func nextIndex(recorded []nodeSpec) int {
	used := map[int]bool{}
	for _, n := range indexed(recorded) {
		used[n.Index] = true
	}
	i := 1
	for used[i] {
		i++
	}
	return i
}

// withNode records spec, replacing the record of the same index, sorted by index.
func withNode(recorded []nodeSpec, spec nodeSpec) []nodeSpec {
	out := slices.DeleteFunc(indexed(recorded), func(n nodeSpec) bool { return n.Index == spec.Index })
	out = append(out, spec)
	slices.SortFunc(out, func(a, b nodeSpec) int { return a.Index - b.Index })
	return out
}

// withoutNode drops the record of spec's index.
func withoutNode(recorded []nodeSpec, spec nodeSpec) []nodeSpec {
	return slices.DeleteFunc(indexed(recorded), func(n nodeSpec) bool { return n.Index == spec.Index })
}

// recordOf returns the record of node index, if any.
func recordOf(recorded []nodeSpec, index int) (nodeSpec, bool) {
	for _, n := range indexed(recorded) {
		if n.Index == index {
			return n, true
		}
	}
	return nodeSpec{}, false
}

// findNode picks a node by its name (ip-….compute.internal, or its first label) or its
// instance id.
func findNode(recorded []nodeSpec, key string) (nodeSpec, error) {
	var names []string
	for _, n := range indexed(recorded) {
		if key == n.Name || key == n.InstanceID || key == strings.SplitN(n.Name, ".", 2)[0] {
			return n, nil
		}
		names = append(names, n.Name)
	}
	if len(names) == 0 {
		return nodeSpec{}, fmt.Errorf("no node %q: the local cluster has no nodes", key)
	}
	return nodeSpec{}, fmt.Errorf("no node %q: the nodes are %s (a name or an instance id)", key, strings.Join(names, ", "))
}
