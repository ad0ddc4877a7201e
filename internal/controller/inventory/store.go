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

// Branch is one branch ENI of a pod, or a reservation for it before the ENI exists.
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
	AssociationID string    // "" until associated
	ReleaseAt     time.Time // zero while the pod uses it
}

// Ref is what cloud.FreeENI needs to free the trunk.
func (t *Trunk) Ref() cloud.ENIRef { return cloud.ENIRef{ID: t.ID, AttachmentID: t.AttachmentID} }

// Ref is what cloud.FreeENI needs to free the branch.
func (b *Branch) Ref() cloud.ENIRef { return cloud.ENIRef{ID: b.ENIID, AssociationID: b.AssociationID} }

// Cooling reports whether the branch is waiting out its cool-down.
func (b *Branch) Cooling() bool { return !b.ReleaseAt.IsZero() }

type node struct {
	Trunk
	branches map[types.UID]*Branch // by pod UID; reservations included
	cooling  []*Branch
	foreign  map[int]bool // VLANs of associations podsg did not create; never reused
}

// Store is safe for concurrent use.
type Store struct {
	mu     sync.Mutex
	nodes  map[string]*node
	notify func(node string)
}

// NewStore returns an empty store; notify (may be nil) is called, outside the lock, with the
// name of a node whose capacity may have changed.
func NewStore(notify func(node string)) *Store {
	if notify == nil {
		notify = func(string) {}
	}
	return &Store{nodes: map[string]*node{}, notify: notify}
}

// PutTrunk records a node's trunk with the branches found on it. Branches with a ReleaseAt
// are cooling down; VLANs in foreign are in use by associations podsg does not own.
func (s *Store) PutTrunk(t Trunk, branches []Branch, foreign []int) {
	n := &node{Trunk: t, branches: map[types.UID]*Branch{}, foreign: map[int]bool{}}
	for _, b := range branches {
		b.Node, b.TrunkID = t.Node, t.ID
		if b.Cooling() {
			n.cooling = append(n.cooling, &b)
		} else {
			n.branches[b.PodUID] = &b
		}
	}
	for _, v := range foreign {
		n.foreign[v] = true
	}
	s.mu.Lock()
	s.nodes[t.Node] = n
	s.mu.Unlock()
	s.notify(t.Node)
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

// Usage is what a trunk carries.
type Usage struct {
	Limit, InUse, Cooling int
}

// Available is the capacity to advertise: branches that can be created now. ENIs cooling
// down are subtracted, so the scheduler never places a pod that would have to wait for one.
func (u Usage) Available() int { return max(0, u.Limit-u.Cooling) }

// Usage returns a node's usage.
func (s *Store) Usage(nodeName string) (Usage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return Usage{}, false
	}
	return Usage{Limit: n.Limit, InUse: len(n.branches), Cooling: len(n.cooling)}, true
}

// Reserve returns the pod's branch on the node, reserving the lowest free VLAN for it first if
// it has none. created tells whether the reservation is new.
func (s *Store) Reserve(nodeName string, uid types.UID, namespace, name string) (b Branch, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[nodeName]
	if !ok {
		return Branch{}, false, ErrNoTrunk
	}
	if b, ok := n.branches[uid]; ok {
		return *b, false, nil
	}
	if len(n.branches)+len(n.cooling) >= n.Limit {
		return Branch{}, false, ErrAtCapacity
	}
	vlan := n.freeVLAN()
	if vlan == 0 {
		return Branch{}, false, ErrAtCapacity
	}
	nb := &Branch{Node: nodeName, TrunkID: n.ID, PodUID: uid, Namespace: namespace, Name: name, VLAN: vlan}
	n.branches[uid] = nb
	return *nb, true, nil
}

// freeVLAN returns the lowest VLAN id used by no branch, or 0.
func (n *node) freeVLAN() int {
	used := make(map[int]bool, len(n.branches)+len(n.cooling)+len(n.foreign))
	for _, b := range n.branches {
		used[b.VLAN] = true
	}
	for _, b := range n.cooling {
		used[b.VLAN] = true
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
