package inventory

import (
	"errors"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podsg/podsg/internal/cloud"
)

// MaxVLAN is the highest VLAN id EC2 accepts.
const MaxVLAN = 4094

// ErrAtCapacity: the trunk carries as many branches (in use and cooling down) as it may.
var ErrAtCapacity = errors.New("trunk at branch ENI capacity")

// ErrNoTrunk: the node has no trunk (yet).
var ErrNoTrunk = errors.New("node has no trunk ENI")

// Trunk describes a node's trunk ENI.
type Trunk struct {
	Node         string
	InstanceID   string
	ID           string // the trunk ENI id
	AttachmentID string
	SubnetID     string
	SubnetCIDR   string
	// Limit is how many branch ENIs the instance type allows on the trunk.
	Limit int
}

// Branch is one branch ENI: of a pod (or a reservation for it before the ENI exists), cooling
// down after its pod, or idle (parked after a pod, or warm: created ahead of any pod) and ready
// for the next pod.
type Branch struct {
	Node          string
	TrunkID       string
	PodUID        types.UID
	Namespace     string
	Name          string
	VLAN          int
	ENIID         string // "" until created
	MAC           string
	PrivateIP     string
	AssociationID string // "" until associated
	// Groups are the security groups the ENI carries in EC2, sorted; nil before it exists and
	// while a change of its groups is in flight (unknown: it never matches a pod's groups).
	Groups    []string
	ReleaseAt time.Time // cooling down until then; zero otherwise
	// Free: when the cool-down ends the ENI is deleted, not parked (an idle branch past its TTL).
	Free bool
	// IdleSince is when the branch became idle (parked or warm); zero otherwise.
	IdleSince time.Time
	// Warm: created for a warm pool, ahead of any pod; false once a pod took it.
	Warm bool
	// Token is the ClientToken of a warm branch's create, so that a retry finds the same ENI.
	Token string
	// Want are the groups a repurposed warm branch is being changed to (Repurpose); nil
	// otherwise. Its Groups are nil meanwhile: EC2 may hold either set.
	Want []string
	// Source is how the current pod got the branch (Reserve's answer).
	Source Source
}

// Source is where a pod's branch comes from.
type Source string

// Sources of a pod's branch.
const (
	SourceHeld   Source = ""       // the pod already had it
	SourceNew    Source = "new"    // a new ENI: create and associate
	SourceParked Source = "parked" // an idle branch a pod left behind after its cool-down
	SourceWarm   Source = "warm"   // an idle branch created ahead of any pod
)

// Ref is what cloud.FreeENI needs to free the trunk.
func (t *Trunk) Ref() cloud.ENIRef { return cloud.ENIRef{ID: t.ID, AttachmentID: t.AttachmentID} }

// Ref is what cloud.FreeENI needs to free the branch.
func (b *Branch) Ref() cloud.ENIRef { return cloud.ENIRef{ID: b.ENIID, AssociationID: b.AssociationID} }

// Cooling reports whether the branch is waiting out its cool-down.
func (b *Branch) Cooling() bool { return !b.ReleaseAt.IsZero() }

// Idle reports whether the branch is parked or warm: associated, ready for a pod.
func (b *Branch) Idle() bool { return !b.IdleSince.IsZero() }

type node struct {
	Trunk
	branches map[types.UID]*Branch // by pod UID; reservations included
	cooling  []*Branch
	idle     []*Branch    // parked and warm, in the order they became idle
	warming  []*Branch    // warm branches being created or associated
	foreign  map[int]bool // VLANs of associations podsg did not create; never reused
}

// held is how many branches the trunk carries or will: every one takes a slot.
func (n *node) held() int { return len(n.branches) + len(n.cooling) + len(n.idle) + len(n.warming) }

// Store is safe for concurrent use.
type Store struct {
	mu    sync.Mutex
	nodes map[string]*node
	// podNodes are the nodes that may hold a branch of a pod name (namespace/name): every
	// node that does, and maybe some that no longer do (pruned by Owned). Owned, which the
	// branch controller calls for every pod it reconciles, reads only those nodes instead of
	// every branch of the cluster: after a restart that was 34,000 pods times up to 34,000
	// branches, under the lock every other caller waits for.
	podNodes map[string]map[string]bool
	notify   func(node string)
}

// NewStore returns an empty store; notify (may be nil) is called, outside the lock, with the
// name of a node whose capacity may have changed.
func NewStore(notify func(node string)) *Store {
	if notify == nil {
		notify = func(string) {}
	}
	return &Store{nodes: map[string]*node{}, podNodes: map[string]map[string]bool{}, notify: notify}
}

// PutTrunk records a node's trunk with the branches found on it. Branches with a ReleaseAt
// are cooling down, idle ones are parked or warm; VLANs in foreign are in use by associations
// podsg does not own. A warm branch with an ENI but no association (made before a crash, never
// associated) resumes warming on the lowest free VLAN, so that the warmer associates it
// instead of creating another; it is left out when the trunk has no room, for the sweeper.
// It returns the warm branches left out.
func (s *Store) PutTrunk(t Trunk, branches []Branch, foreign []int) []Branch {
	n := &node{Trunk: t, branches: map[types.UID]*Branch{}, foreign: map[int]bool{}}
	var unassociated []Branch
	for _, b := range branches {
		b.Node, b.TrunkID = t.Node, t.ID
		b.Groups = SortedGroups(b.Groups)
		switch {
		case b.Warm && b.AssociationID == "":
			unassociated = append(unassociated, b)
		case b.Cooling():
			n.cooling = append(n.cooling, &b)
		case b.Idle():
			n.idle = append(n.idle, &b)
		default:
			n.branches[b.PodUID] = &b
		}
	}
	for _, v := range foreign {
		n.foreign[v] = true
	}
	var left []Branch
	for _, b := range unassociated {
		if n.held() < n.Limit {
			b.VLAN = n.freeVLAN()
		}
		if b.VLAN == 0 {
			left = append(left, b)
			continue
		}
		n.warming = append(n.warming, &b)
	}
	s.mu.Lock()
	s.nodes[t.Node] = n
	for _, b := range n.branches {
		s.lockedMayHold(b.Namespace, b.Name, t.Node)
	}
	s.mu.Unlock()
	s.notify(t.Node)
	return left
}

// Trunk returns a node's trunk.
func (s *Store) Trunk(nodeName string) (Trunk, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return Trunk{}, false
	}
	return n.Trunk, true
}

// Nodes returns the names of the nodes with a trunk.
func (s *Store) Nodes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.nodes))
	for name := range s.nodes {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Usage is what a trunk carries: branches in use (reservations included), cooling down,
// parked, warm, and warm ones being created.
type Usage struct {
	Limit, InUse, Cooling, Parked, Warm, Warming int
}

// Available is the capacity to advertise: branches a pod can get now, a new one or an idle
// one. ENIs cooling down are subtracted, so the scheduler never places a pod that would have
// to wait for one; parked and warm ones are free capacity.
func (u Usage) Available() int { return max(0, u.Limit-u.Cooling) }

// Usage returns a node's usage.
func (s *Store) Usage(nodeName string) (Usage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return Usage{}, false
	}
	u := Usage{Limit: n.Limit, InUse: len(n.branches), Cooling: len(n.cooling), Warming: len(n.warming)}
	for _, b := range n.idle {
		if b.Warm {
			u.Warm++
		} else {
			u.Parked++
		}
	}
	return u, true
}

// Reserve returns the pod's branch on the node, taking one for it first if it has none:
//  1. an idle branch with exactly the pod's groups (no EC2 call);
//  2. a parked branch with other groups (one call to change them);
//  3. a new reservation on the lowest free VLAN, if the trunk has room (create, associate);
//  4. a warm branch with other groups (one call), when the trunk is full.
//
// Idle branches are taken most recently idle first, so that those no pod needs grow old and
// are released after their idle TTL. The returned Source says which it was; SourceHeld when
// the pod already had a branch. groups are the pod's; the caller changes the branch's when
// they differ (SameGroups).
func (s *Store) Reserve(nodeName string, uid types.UID, namespace, name string, groups []string) (Branch, Source, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return Branch{}, SourceHeld, ErrNoTrunk
	}
	if b, ok := n.branches[uid]; ok {
		return *b, SourceHeld, nil
	}
	key := GroupsKey(groups)
	i := n.pickIdle(func(b *Branch) bool { return GroupsKey(b.Groups) == key })
	if i < 0 {
		i = n.pickIdle(func(b *Branch) bool { return !b.Warm })
	}
	if i < 0 && n.held() < n.Limit {
		if vlan := n.freeVLAN(); vlan != 0 {
			nb := &Branch{Node: nodeName, TrunkID: n.ID, PodUID: uid, Namespace: namespace, Name: name, VLAN: vlan, Source: SourceNew}
			n.branches[uid] = nb
			s.lockedMayHold(namespace, name, nodeName)
			return *nb, SourceNew, nil
		}
	}
	if i < 0 {
		i = n.pickIdle(func(*Branch) bool { return true })
	}
	if i < 0 {
		return Branch{}, SourceHeld, ErrAtCapacity
	}
	b := n.idle[i]
	n.idle = slices.Delete(n.idle, i, i+1)
	b.Source = SourceParked
	if b.Warm {
		b.Source = SourceWarm
	}
	b.PodUID, b.Namespace, b.Name, b.IdleSince, b.Warm, b.Token = uid, namespace, name, time.Time{}, false, ""
	n.branches[uid] = b
	s.lockedMayHold(namespace, name, nodeName)
	return *b, b.Source, nil
}

// lockedMayHold records that nodeName may hold a branch of the pod namespace/name.
func (s *Store) lockedMayHold(namespace, name, nodeName string) {
	key := namespace + "/" + name
	if s.podNodes[key] == nil {
		s.podNodes[key] = map[string]bool{}
	}
	s.podNodes[key][nodeName] = true
}

// pickIdle returns the index of the most recently idle branch that ok accepts, or -1.
func (n *node) pickIdle(ok func(*Branch) bool) int {
	best := -1
	for i, b := range n.idle {
		if ok(b) && (best < 0 || !b.IdleSince.Before(n.idle[best].IdleSince)) {
			best = i
		}
	}
	return best
}

// freeVLAN returns the lowest VLAN id used by no branch, or 0.
func (n *node) freeVLAN() int {
	used := make(map[int]bool, n.held()+len(n.foreign))
	for _, b := range n.branches {
		used[b.VLAN] = true
	}
	for _, list := range [][]*Branch{n.cooling, n.idle, n.warming} {
		for _, b := range list {
			used[b.VLAN] = true
		}
	}
	for v := range n.foreign {
		used[v] = true
	}
	for v := 1; v <= MaxVLAN; v++ {
		if !used[v] {
			return v
		}
	}
	return 0
}

// Update changes the pod's in-use branch with fn (to record the ENI or the association).
func (s *Store) Update(nodeName string, uid types.UID, fn func(*Branch)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return false
	}
	b, ok := n.branches[uid]
	if ok {
		fn(b)
	}
	return ok
}

// Unreserve drops a reservation whose ENI was never created, freeing its VLAN at once.
func (s *Store) Unreserve(nodeName string, uid types.UID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.nodes[nodeName]; ok {
		if b, ok := n.branches[uid]; ok && b.ENIID == "" {
			delete(n.branches, uid)
		}
	}
}
