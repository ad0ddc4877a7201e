package inventory

import (
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Owned returns the in-use branches recorded for a pod name, on any node. Callers compare UIDs
// to find branches of an earlier pod of the same name.
func (s *Store) Owned(namespace, name string) []Branch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Branch
	key := namespace + "/" + name
	for nodeName := range s.podNodes[key] {
		held := false
		if n, ok := s.nodes[nodeName]; ok {
			for _, b := range n.branches {
				if b.Namespace == namespace && b.Name == name {
					out = append(out, *b)
					held = true
				}
			}
		}
		if !held {
			delete(s.podNodes[key], nodeName)
		}
	}
	if len(s.podNodes[key]) == 0 {
		delete(s.podNodes, key)
	}
	return out
}

// Release starts the cool-down of a pod's branch, to end at releaseAt; a reservation without
// an ENI is dropped at once. It reports whether anything was released.
func (s *Store) Release(nodeName string, uid types.UID, releaseAt time.Time) bool {
	s.mu.Lock()
	n, ok := s.nodes[nodeName]
	var b *Branch
	if ok {
		b, ok = n.branches[uid]
	}
	if !ok {
		s.mu.Unlock()
		return false
	}
	delete(n.branches, uid)
	if b.ENIID != "" {
		b.ReleaseAt, b.Free = releaseAt, false
		n.cooling = append(n.cooling, b)
	}
	s.mu.Unlock()
	s.notify(nodeName)
	return true
}

// Due returns the cooling branches whose cool-down ended by now.
func (s *Store) Due(now time.Time) []Branch {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Branch
	for _, n := range s.nodes {
		for _, b := range n.cooling {
			if !b.ReleaseAt.After(now) {
				out = append(out, *b)
			}
		}
	}
	return out
}

// Branches returns every branch of a node, in use, cooling, idle and warming, for teardown.
func (s *Store) Branches(nodeName string) []Branch {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return nil
	}
	out := make([]Branch, 0, n.held())
	for _, b := range n.branches {
		out = append(out, *b)
	}
	for _, list := range [][]*Branch{n.cooling, n.idle, n.warming} {
		for _, b := range list {
			out = append(out, *b)
		}
	}
	return out
}

// Drop removes one branch of a node, whatever its state, after its ENI was deleted (or, for a
// warm reservation, never created).
func (s *Store) Drop(nodeName string, b Branch) {
	s.mu.Lock()
	if n, ok := s.nodes[nodeName]; ok {
		if cur, ok := n.branches[b.PodUID]; ok && cur.ENIID == b.ENIID {
			delete(n.branches, b.PodUID)
		}
		same := func(c *Branch) bool { return c.ENIID == b.ENIID && c.VLAN == b.VLAN }
		n.cooling = slices.DeleteFunc(n.cooling, same)
		n.idle = slices.DeleteFunc(n.idle, same)
		n.warming = slices.DeleteFunc(n.warming, same)
	}
	s.mu.Unlock()
	s.notify(nodeName)
}

// RemoveTrunk forgets a node.
func (s *Store) RemoveTrunk(nodeName string) {
	s.mu.Lock()
	delete(s.nodes, nodeName)
	s.mu.Unlock()
}

// Known reports whether an ENI id is a trunk or branch the store tracks.
func (s *Store) Known(eniID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.nodes {
		if n.ID == eniID {
			return true
		}
		for _, b := range n.branches {
			if b.ENIID == eniID {
				return true
			}
		}
		for _, list := range [][]*Branch{n.cooling, n.idle, n.warming} {
			for _, b := range list {
				if b.ENIID == eniID {
					return true
				}
			}
		}
	}
	return false
}
