package inventory

import (
	"errors"
	"slices"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

// idle returns a parked (or warm) branch of groups on vlan, idle since t0+since.
func idle(vlan int, groups []string, since time.Duration, warm bool) Branch {
	return Branch{VLAN: vlan, ENIID: "eni-" + string(rune('0'+vlan)), AssociationID: "assoc", Groups: groups,
		IdleSince: t0.Add(since), Warm: warm}
}

// TestReserveTakes: which branch a pod gets, by the idle branches its node has and its room.
func TestReserveTakes(t *testing.T) {
	a, b := []string{"sg-a", "sg-b"}, []string{"sg-c"}
	inUse := Branch{PodUID: "other", VLAN: 9, ENIID: "eni-in-use", Groups: a}
	tests := map[string]struct {
		limit      int
		existing   []Branch
		want       Source
		wantVLAN   int
		wantErr    error
		wantGroups []string // the branch's groups before the caller changes them
	}{
		"nothing idle: a new one":          {limit: 4, want: SourceNew, wantVLAN: 1},
		"parked, same groups in any order": {limit: 4, existing: []Branch{idle(3, []string{"sg-b", "sg-a"}, 0, false)}, want: SourceParked, wantVLAN: 3, wantGroups: a},
		"warm, same groups":                {limit: 4, existing: []Branch{idle(3, a, 0, true)}, want: SourceWarm, wantVLAN: 3, wantGroups: a},
		"same groups before other groups": {limit: 4, existing: []Branch{idle(2, b, 2, false), idle(3, a, 0, true)},
			want: SourceWarm, wantVLAN: 3, wantGroups: a},
		"the most recently idle of the same groups": {limit: 4, existing: []Branch{idle(2, a, 0, false), idle(3, a, time.Second, false)},
			want: SourceParked, wantVLAN: 3, wantGroups: a},
		"parked with other groups before a new one":     {limit: 4, existing: []Branch{idle(2, b, 0, false)}, want: SourceParked, wantVLAN: 2, wantGroups: b},
		"unknown groups are other groups":               {limit: 4, existing: []Branch{idle(2, nil, 0, false)}, want: SourceParked, wantVLAN: 2},
		"warm of other groups kept while there is room": {limit: 4, existing: []Branch{idle(2, b, 0, true)}, want: SourceNew, wantVLAN: 1},
		"warm of other groups taken when full": {limit: 2, existing: []Branch{inUse, idle(2, b, 0, true)},
			want: SourceWarm, wantVLAN: 2, wantGroups: b},
		"full, nothing idle": {limit: 2, existing: []Branch{inUse, {PodUID: "gone", VLAN: 1, ENIID: "eni-c", ReleaseAt: t0}}, wantErr: ErrAtCapacity},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewStore(nil)
			s.PutTrunk(Trunk{Node: "n", ID: "eni-trunk", Limit: tc.limit}, tc.existing, nil)
			got, src, err := s.Reserve("n", "pod", "ns", "p", a)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if src != tc.want || got.VLAN != tc.wantVLAN || !slices.Equal(got.Groups, tc.wantGroups) {
				t.Fatalf("took %q VLAN %d groups %v; want %q VLAN %d groups %v", src, got.VLAN, got.Groups, tc.want, tc.wantVLAN, tc.wantGroups)
			}
			if got.PodUID != "pod" || got.Idle() || got.Warm {
				t.Fatalf("the branch is not the pod's: %+v", got)
			}
			if again, src, _ := s.Reserve("n", "pod", "ns", "p", a); src != SourceHeld || again.VLAN != got.VLAN {
				t.Fatalf("reserving again: %q VLAN %d, want the same branch", src, again.VLAN)
			}
		})
	}
}

// TestParkCycle: a released branch cools down, is parked when its cool-down ends (capacity
// all along: held while cooling, free once parked), and the next pod takes it.
func TestParkCycle(t *testing.T) {
	notified := 0
	s := NewStore(func(string) { notified++ })
	s.PutTrunk(Trunk{Node: "n", ID: "eni-trunk", Limit: 2}, nil, nil)
	b, _, _ := s.Reserve("n", "p1", "ns", "p1", groupsA)
	s.Update("n", "p1", func(b *Branch) { b.ENIID, b.AssociationID, b.Groups = "eni-1", "assoc-1", SortedGroups(groupsA) })
	s.Release("n", "p1", t0.Add(time.Minute))
	if u, _ := s.Usage("n"); u.Available() != 1 || u.Cooling != 1 {
		t.Fatalf("cooling: usage %+v, available %d", u, u.Available())
	}
	if !s.Park("n", "eni-1", t0.Add(time.Minute)) {
		t.Fatal("the cooled-down branch was not parked")
	}
	if u, _ := s.Usage("n"); u != (Usage{Limit: 2, Parked: 1}) || u.Available() != 2 {
		t.Fatalf("parked: usage %+v", u)
	}
	if !s.Known("eni-1") {
		t.Fatal("a parked branch must be known (the sweeper leaves it alone)")
	}
	if s.Park("n", "eni-1", t0) {
		t.Fatal("parked twice")
	}
	got, src, err := s.Reserve("n", "p2", "ns", "p2", []string{"sg-a", "sg-b"})
	if err != nil || src != SourceParked || got.ENIID != "eni-1" || got.VLAN != b.VLAN || got.AssociationID != "assoc-1" {
		t.Fatalf("p2 got %+v from %q (%v), want the parked eni-1", got, src, err)
	}
	if notified < 3 {
		t.Fatalf("%d notifications, want one per capacity change", notified)
	}
}

// TestExpire: idle branches older than the TTL are released, but for the warm target of their
// groups on their node, which keeps the most recently idle ones.
func TestExpire(t *testing.T) {
	a, b := []string{"sg-a"}, []string{"sg-b"}
	tests := map[string]struct {
		idle []Branch
		keep map[string]int // by GroupsKey
		want []int          // VLANs released
	}{
		"young ones stay":      {idle: []Branch{idle(1, a, 0, false)}},
		"old ones go":          {idle: []Branch{idle(1, a, -time.Hour, false), idle(2, a, 0, false)}, want: []int{1}},
		"warm ones too":        {idle: []Branch{idle(1, a, -time.Hour, true)}, want: []int{1}},
		"the target is kept":   {idle: []Branch{idle(1, a, -time.Hour, true), idle(2, a, -2*time.Hour, false)}, keep: map[string]int{"sg-a": 1}, want: []int{2}},
		"per set of groups":    {idle: []Branch{idle(1, a, -time.Hour, false), idle(2, b, -time.Hour, false)}, keep: map[string]int{"sg-b": 1}, want: []int{1}},
		"a target above count": {idle: []Branch{idle(1, a, -time.Hour, false)}, keep: map[string]int{"sg-a": 3}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := NewStore(nil)
			s.PutTrunk(Trunk{Node: "n", ID: "eni-trunk", Limit: 9}, tc.idle, nil)
			now := t0.Add(time.Minute)
			var got []int
			for _, e := range s.Expire(now, 30*time.Minute, func(node, groups string) int { return tc.keep[groups] }) {
				got = append(got, e.VLAN)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("expired VLANs %v, want %v", got, tc.want)
			}
			u, _ := s.Usage("n")
			if u.Cooling != len(tc.want) || u.Parked+u.Warm != len(tc.idle)-len(tc.want) {
				t.Fatalf("usage %+v after expiring %v", u, got)
			}
			// Expired branches are due at once and never parked again, nor taken by a pod.
			if due := s.Due(now); len(due) != len(tc.want) || (len(due) > 0 && !due[0].Free) {
				t.Fatalf("due %+v", due)
			}
			for _, v := range tc.want {
				if s.Park("n", "eni-"+string(rune('0'+v)), now) {
					t.Fatalf("VLAN %d parked again after expiring", v)
				}
			}
		})
	}
}

func TestGroupsKey(t *testing.T) {
	tests := []struct {
		a, b []string
		same bool
	}{
		{a: []string{"sg-a", "sg-b"}, b: []string{"sg-b", "sg-a"}, same: true},
		{a: []string{"sg-a", "sg-a"}, b: []string{"sg-a"}, same: true},
		{a: []string{"sg-a"}, b: []string{"sg-a", "sg-b"}},
		{a: nil, b: nil},
		{a: nil, b: []string{"sg-a"}},
	}
	for _, tc := range tests {
		if got := SameGroups(tc.a, tc.b); got != tc.same {
			t.Errorf("SameGroups(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// TestWarmCycle: a warm reservation holds a VLAN and a slot but no pod takes it until it is
// ready; then it is idle, a pod with its groups takes it; one never created frees its VLAN.
func TestWarmCycle(t *testing.T) {
	s := NewStore(nil)
	s.PutTrunk(Trunk{Node: "n", ID: "eni-trunk", Limit: 2}, nil, nil)
	w, err := s.ReserveWarm("n", groupsA, "tok")
	if err != nil || w.VLAN != 1 || !w.Warm {
		t.Fatalf("warm reservation %+v, %v", w, err)
	}
	if u, _ := s.Usage("n"); u != (Usage{Limit: 2, Warming: 1}) || u.Available() != 2 {
		t.Fatalf("usage %+v", u)
	}
	if b, src, _ := s.Reserve("n", "pod", "ns", "p", groupsA); src != SourceNew || b.VLAN != 2 {
		t.Fatalf("a pod took %q VLAN %d while the warm branch was not ready", src, b.VLAN)
	}
	if _, err := s.ReserveWarm("n", groupsA, "tok2"); !errors.Is(err, ErrAtCapacity) {
		t.Fatalf("a warm reservation beyond the limit: %v", err)
	}
	if s.WarmReady("n", 1, t0) {
		t.Fatal("ready without an ENI")
	}
	s.UpdateWarming("n", 1, func(b *Branch) { b.ENIID, b.AssociationID = "eni-w", "assoc-w" })
	if got := s.Warming("n"); len(got) != 1 || got[0].ENIID != "eni-w" || got[0].Token != "tok" {
		t.Fatalf("warming %+v", got)
	}
	if !s.WarmReady("n", 1, t0) || s.Idle("n", GroupsKey(groupsA)) != 1 {
		t.Fatal("the warm branch is not idle once ready")
	}
	s.Unreserve("n", "pod")
	if b, src, _ := s.Reserve("n", "pod2", "ns", "p2", groupsA); src != SourceWarm || b.ENIID != "eni-w" {
		t.Fatalf("pod2 got %q %+v, want the warm branch", src, b)
	}
	w2, _ := s.ReserveWarm("n", groupsA, "tok3")
	s.Unwarm("n", w2.VLAN)
	if u, _ := s.Usage("n"); u.Warming != 0 {
		t.Fatalf("usage %+v after dropping a warm reservation", u)
	}
}
