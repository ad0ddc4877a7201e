package inventory

import (
	"slices"
	"time"
)

// ReserveWarm reserves the lowest free VLAN of a node's trunk for a warm branch of groups,
// made with the ClientToken token, if the trunk has room. The branch counts against the
// trunk's capacity (it will be free capacity once idle) and no pod takes it before WarmReady.
func (s *Store) ReserveWarm(nodeName string, groups []string, token string) (Branch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return Branch{}, ErrNoTrunk
	}
	vlan := 0
	if n.held() < n.Limit {
		vlan = n.freeVLAN()
	}
	if vlan == 0 {
		return Branch{}, ErrAtCapacity
	}
	b := &Branch{Node: nodeName, TrunkID: n.ID, VLAN: vlan, Groups: SortedGroups(groups), Warm: true, Token: token}
	n.warming = append(n.warming, b)
	return *b, nil
}

// Repurpose takes for a warm branch of groups, when the trunk has no room for a new one, the
// least recently idle branch of a node whose groups have more branches idle (or about to be,
// see Idle) than keep(GroupsKey) wants: parked branches no pod took would otherwise hold the
// trunk's slots until their idle TTL. The branch is warming again with its groups unknown
// (nil) and Want set, until the warmer has changed them with one call.
func (s *Store) Repurpose(nodeName string, groups []string, keep func(groups string) int) (Branch, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return Branch{}, false
	}
	want := GroupsKey(groups)
	count := n.idleByGroups()
	best := -1
	for i, b := range n.idle {
		key := GroupsKey(b.Groups)
		if key == want || b.Groups == nil || count[key] <= keep(key) {
			continue
		}
		if best < 0 || b.IdleSince.Before(n.idle[best].IdleSince) {
			best = i
		}
	}
	if best < 0 {
		return Branch{}, false
	}
	b := n.idle[best]
	n.idle = slices.Delete(n.idle, best, best+1)
	b.IdleSince, b.Warm, b.Groups, b.Want = time.Time{}, true, nil, SortedGroups(groups)
	n.warming = append(n.warming, b)
	return *b, true
}

// Unrepurpose gives up a repurposed branch whose groups could not be changed (a missing
// group): it is idle again, of unknown groups, for a pod to take and set, or to expire.
func (s *Store) Unrepurpose(nodeName string, vlan int, now time.Time) {
	s.mu.Lock()
	b := s.warmingAt(nodeName, vlan)
	if b == nil || b.Want == nil {
		s.mu.Unlock()
		return
	}
	n := s.nodes[nodeName]
	n.warming = slices.DeleteFunc(n.warming, func(c *Branch) bool { return c == b })
	b.Want, b.Warm, b.IdleSince = nil, false, now
	n.idle = append(n.idle, b)
	s.mu.Unlock()
	s.notify(nodeName)
}

// Warming returns a node's warm branches not yet ready, to resume their creation.
func (s *Store) Warming(nodeName string) []Branch {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return nil
	}
	out := make([]Branch, 0, len(n.warming))
	for _, b := range n.warming {
		out = append(out, *b)
	}
	return out
}

// UpdateWarming changes the warm branch being made on a VLAN of a node with fn (to record
// its ENI or association).
func (s *Store) UpdateWarming(nodeName string, vlan int, fn func(*Branch)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.warmingAt(nodeName, vlan); b != nil {
		fn(b)
		return true
	}
	return false
}

// WarmReady makes the warm branch on a VLAN of a node idle: a pod may take it.
func (s *Store) WarmReady(nodeName string, vlan int, now time.Time) bool {
	s.mu.Lock()
	b := s.warmingAt(nodeName, vlan)
	if b == nil || b.ENIID == "" || b.AssociationID == "" {
		s.mu.Unlock()
		return false
	}
	n := s.nodes[nodeName]
	n.warming = slices.DeleteFunc(n.warming, func(c *Branch) bool { return c == b })
	b.IdleSince, b.Token = now, ""
	n.idle = append(n.idle, b)
	s.mu.Unlock()
	s.notify(nodeName)
	return true
}

// Unwarm drops a warm reservation whose ENI was never created, freeing its VLAN.
func (s *Store) Unwarm(nodeName string, vlan int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.warmingAt(nodeName, vlan); b != nil && b.ENIID == "" {
		n := s.nodes[nodeName]
		n.warming = slices.DeleteFunc(n.warming, func(c *Branch) bool { return c == b })
	}
}

// warmingAt returns the warm branch being made on a VLAN of a node, or nil. Callers hold s.mu.
func (s *Store) warmingAt(nodeName string, vlan int) *Branch {
	n, ok := s.nodes[nodeName]
	if !ok {
		return nil
	}
	if i := slices.IndexFunc(n.warming, func(b *Branch) bool { return b.VLAN == vlan }); i >= 0 {
		return n.warming[i]
	}
	return nil
}
