package inventory

import (
	"slices"
	"time"
)

// Park makes a branch whose cool-down has ended idle, ready for the next pod on its node, and
// reports whether it was there to park. Its address is no longer any pod's: the cool-down
// that protected it is over.
func (s *Store) Park(nodeName, eniID string, now time.Time) bool {
	s.mu.Lock()
	n, ok := s.nodes[nodeName]
	i := -1
	if ok {
		i = slices.IndexFunc(n.cooling, func(b *Branch) bool { return b.ENIID == eniID && !b.Free })
	}
	if i < 0 {
		s.mu.Unlock()
		return false
	}
	b := n.cooling[i]
	n.cooling = slices.Delete(n.cooling, i, i+1)
	b.PodUID, b.Namespace, b.Name, b.ReleaseAt, b.IdleSince, b.Source = "", "", "", time.Time{}, now, SourceHeld
	n.idle = append(n.idle, b)
	s.mu.Unlock()
	s.notify(nodeName)
	return true
}

// Expire starts the release of idle branches that no pod took for ttl, keeping on each node the
// keep(node, GroupsKey) most recently idle ones of each set of groups (its warm target). An
// expired branch goes back to cooling, due now and marked Free, so that no pod takes it while
// it is deleted and its slot is not advertised meanwhile. It returns the expired branches.
func (s *Store) Expire(now time.Time, ttl time.Duration, keep func(node, groups string) int) []Branch {
	s.mu.Lock()
	var out []Branch
	var changed []string
	for name, n := range s.nodes {
		before := len(out)
		kept := map[string]int{}
		// Most recently idle first: those are kept, the oldest go.
		byAge := slices.Clone(n.idle)
		slices.SortStableFunc(byAge, func(a, b *Branch) int { return b.IdleSince.Compare(a.IdleSince) })
		for _, b := range byAge {
			key := GroupsKey(b.Groups)
			if keep != nil && kept[key] < keep(name, key) {
				kept[key]++
				continue
			}
			if now.Sub(b.IdleSince) < ttl {
				continue
			}
			n.idle = slices.DeleteFunc(n.idle, func(c *Branch) bool { return c == b })
			b.IdleSince, b.ReleaseAt, b.Free, b.Warm = time.Time{}, now, true, false
			n.cooling = append(n.cooling, b)
			out = append(out, *b)
		}
		if len(out) > before {
			changed = append(changed, name)
		}
	}
	s.mu.Unlock()
	for _, name := range changed {
		s.notify(name)
	}
	return out
}

// Idle returns how many branches of a node carry groups (GroupsKey) and are or will be idle:
// idle, warming, and cooling down to be parked. Those cooling count because they will be
// parked with their groups: after a restart every warm branch found cools down afresh, and a
// warmer that did not count them would make the target again.
func (s *Store) Idle(nodeName, groups string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return 0
	}
	return n.idleByGroups()[groups]
}

// idleByGroups counts the branches that are or will be idle (see Idle) by GroupsKey; a
// repurposed one by the groups it is being changed to. Callers hold s.mu.
func (n *node) idleByGroups() map[string]int {
	count := map[string]int{}
	for _, list := range [][]*Branch{n.idle, n.warming, n.cooling} {
		for _, b := range list {
			switch {
			case b.Free:
			case b.Groups == nil && b.Want != nil:
				count[GroupsKey(b.Want)]++
			default:
				count[GroupsKey(b.Groups)]++
			}
		}
	}
	return count
}
