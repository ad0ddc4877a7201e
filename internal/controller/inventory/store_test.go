package inventory

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

var groupsA = []string{"sg-b", "sg-a"}

func TestVLANAllocation(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := map[string]struct {
		limit    int
		existing []Branch
		foreign  []int
		wantVLAN int
		wantErr  error
	}{
		"empty trunk starts at 1":  {limit: 3, wantVLAN: 1},
		"lowest free, not next":    {limit: 9, existing: []Branch{{PodUID: "a", VLAN: 1, ENIID: "e1"}, {PodUID: "b", VLAN: 3, ENIID: "e3"}}, wantVLAN: 2},
		"cooling VLANs stay taken": {limit: 9, existing: []Branch{{PodUID: "a", VLAN: 1, ENIID: "e1", ReleaseAt: now}}, wantVLAN: 2},
		"foreign VLANs stay taken": {limit: 9, foreign: []int{1, 2}, wantVLAN: 3},
		"cooling counts against capacity": {limit: 2, existing: []Branch{
			{PodUID: "a", VLAN: 1, ENIID: "e1"}, {PodUID: "b", VLAN: 2, ENIID: "e2", ReleaseAt: now}}, wantErr: ErrAtCapacity},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewStore(nil)
			s.PutTrunk(Trunk{Node: "n", ID: "eni-trunk", Limit: tc.limit}, tc.existing, tc.foreign)
			b, src, err := s.Reserve("n", "new", "ns", "p", groupsA)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && (b.VLAN != tc.wantVLAN || src != SourceNew) {
				t.Fatalf("vlan = %d (source %q), want %d", b.VLAN, src, tc.wantVLAN)
			}
		})
	}
}

func TestReserveReleaseCycle(t *testing.T) {
	var notified []string
	s := NewStore(func(n string) { notified = append(notified, n) })
	if _, _, err := s.Reserve("n", "x", "ns", "p", groupsA); !errors.Is(err, ErrNoTrunk) {
		t.Fatalf("want ErrNoTrunk, got %v", err)
	}
	s.PutTrunk(Trunk{Node: "n", ID: "eni-trunk", Limit: 2}, nil, nil)
	for i := range 2 {
		uid := types.UID(fmt.Sprint(i))
		b, _, err := s.Reserve("n", uid, "ns", fmt.Sprint("p", i), groupsA)
		if err != nil {
			t.Fatal(err)
		}
		s.Update("n", uid, func(b *Branch) { b.ENIID = fmt.Sprint("eni-", b.VLAN) })
		if again, src, _ := s.Reserve("n", uid, "ns", "p", groupsA); src != SourceHeld || again.VLAN != b.VLAN {
			t.Fatalf("second Reserve must return the same branch, got %+v source %q", again, src)
		}
	}
	now := time.Unix(1000, 0)
	if !s.Release("n", "0", now.Add(time.Minute)) {
		t.Fatal("release failed")
	}
	if u, _ := s.Usage("n"); u != (Usage{Limit: 2, InUse: 1, Cooling: 1}) || u.Available() != 1 {
		t.Fatalf("usage = %+v", u)
	}
	if _, _, err := s.Reserve("n", "2", "ns", "p2", groupsA); !errors.Is(err, ErrAtCapacity) {
		t.Fatalf("a cooling ENI must hold its slot, got %v", err)
	}
	if due := s.Due(now); len(due) != 0 {
		t.Fatalf("nothing is due before the cool-down, got %v", due)
	}
	due := s.Due(now.Add(time.Minute))
	if len(due) != 1 || due[0].VLAN != 1 {
		t.Fatalf("due = %+v", due)
	}
	s.Drop("n", due[0])
	b, _, err := s.Reserve("n", "2", "ns", "p2", groupsA)
	if err != nil || b.VLAN != 1 {
		t.Fatalf("VLAN 1 must be free again: %+v %v", b, err)
	}
	// A reservation without an ENI frees its VLAN at once.
	s.Release("n", "2", now)
	if u, _ := s.Usage("n"); u.Cooling != 0 || u.InUse != 1 {
		t.Fatalf("usage = %+v", u)
	}
	if len(notified) == 0 {
		t.Fatal("capacity changes must be notified")
	}
}

// TestPutTrunkAdoptsUnassociatedWarm: a warm branch found with an ENI and no association
// resumes warming on the lowest VLAN no other branch (or foreign association) has, while the
// trunk has room; beyond it, it is left out and returned. Branches cooling down to be parked
// count with the idle and warming ones toward a warm target; one cooling to be deleted does not.
func TestPutTrunkAdoptsUnassociatedWarm(t *testing.T) {
	now := time.Unix(1000, 0)
	key := GroupsKey(groupsA)
	unassociated := func(id string) Branch { return Branch{ENIID: id, Groups: groupsA, Warm: true} }
	tests := map[string]struct {
		limit     int
		existing  []Branch
		foreign   []int
		wantVLANs []int    // of the warming branches, in order
		wantLeft  []string // ENIs left out
		wantIdle  int
	}{
		"on the lowest free VLAN": {limit: 9, foreign: []int{1},
			existing:  []Branch{{PodUID: "a", VLAN: 2, ENIID: "e2"}, unassociated("w1"), unassociated("w2")},
			wantVLANs: []int{3, 4}, wantIdle: 2},
		"only within the trunk's room": {limit: 2,
			existing:  []Branch{{PodUID: "a", VLAN: 1, ENIID: "e1"}, unassociated("w1"), unassociated("w2")},
			wantVLANs: []int{2}, wantLeft: []string{"w2"}, wantIdle: 1},
		"cooling to be parked counts, to be deleted does not": {limit: 9, existing: []Branch{
			{VLAN: 1, ENIID: "e1", AssociationID: "a1", Groups: groupsA, ReleaseAt: now},
			{VLAN: 2, ENIID: "e2", AssociationID: "a2", Groups: groupsA, ReleaseAt: now, Free: true},
			{VLAN: 3, ENIID: "e3", AssociationID: "a3", Groups: groupsA, IdleSince: now, Warm: true},
		}, wantIdle: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewStore(nil)
			left := s.PutTrunk(Trunk{Node: "n", ID: "eni-trunk", Limit: tc.limit}, tc.existing, tc.foreign)
			var gotLeft []string
			for _, b := range left {
				gotLeft = append(gotLeft, b.ENIID)
			}
			if fmt.Sprint(gotLeft) != fmt.Sprint(tc.wantLeft) {
				t.Errorf("left out %v, want %v", gotLeft, tc.wantLeft)
			}
			var vlans []int
			for _, b := range s.Warming("n") {
				vlans = append(vlans, b.VLAN)
			}
			if fmt.Sprint(vlans) != fmt.Sprint(tc.wantVLANs) {
				t.Errorf("warming on VLANs %v, want %v", vlans, tc.wantVLANs)
			}
			if got := s.Idle("n", key); got != tc.wantIdle {
				t.Errorf("Idle = %d, want %d", got, tc.wantIdle)
			}
		})
	}
}

// TestOwned: Owned finds a pod name's in-use branches on every node, however they came (a
// reservation, an adopted trunk, an idle branch handed out), including an earlier pod's of
// the same name on another node, and forgets them once released or their node is gone.
func TestOwned(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewStore(nil)
	s.PutTrunk(Trunk{Node: "n1", ID: "eni-t1", Limit: 9}, []Branch{
		{PodUID: "old", Namespace: "ns", Name: "p", VLAN: 1, ENIID: "e1", AssociationID: "a1"},
		{PodUID: "other", Namespace: "ns", Name: "q", VLAN: 2, ENIID: "e2", AssociationID: "a2"},
		{VLAN: 3, ENIID: "e3", AssociationID: "a3", Groups: groupsA, IdleSince: now},
	}, nil)
	s.PutTrunk(Trunk{Node: "n2", ID: "eni-t2", Limit: 9}, nil, nil)
	owned := func() map[types.UID]string {
		out := map[types.UID]string{}
		for _, b := range s.Owned("ns", "p") {
			out[b.PodUID] = b.Node
		}
		return out
	}
	if got := owned(); fmt.Sprint(got) != "map[old:n1]" {
		t.Fatalf("adopted: %v, want old on n1", got)
	}
	if _, _, err := s.Reserve("n2", "new", "ns", "p", groupsA); err != nil { // recreated on n2
		t.Fatal(err)
	}
	if got := owned(); fmt.Sprint(got) != "map[new:n2 old:n1]" {
		t.Fatalf("recreated on another node: %v, want old on n1 and new on n2", got)
	}
	s.Release("n1", "old", now)
	if got := owned(); fmt.Sprint(got) != "map[new:n2]" {
		t.Fatalf("old released: %v, want new on n2", got)
	}
	// The idle branch of n1 handed out to a third pod of the name: the last Owned dropped n1
	// from the nodes that may hold one, and it must be found again.
	if _, src, err := s.Reserve("n1", "third", "ns", "p", groupsA); err != nil || src != SourceParked {
		t.Fatalf("reserving n1's idle branch: %v (source %q)", err, src)
	}
	if got := owned(); fmt.Sprint(got) != "map[new:n2 third:n1]" {
		t.Fatalf("idle branch handed out: %v, want new on n2 and third on n1", got)
	}
	s.RemoveTrunk("n2")
	if got := owned(); fmt.Sprint(got) != "map[third:n1]" {
		t.Fatalf("n2 removed: %v, want third on n1", got)
	}
	if got := s.Owned("ns", "q"); len(got) != 1 || got[0].PodUID != "other" {
		t.Fatalf("another name: %v, want other's branch", got)
	}
}
