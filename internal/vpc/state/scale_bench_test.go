package state_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// BenchmarkScaleStateOpen is state.Open of a state file holding a fleet: PODSG_SCALE_ENIS
// ENIs (default 100,000) on trunk nodes of 50 branches each, tagged as podsg-controller tags
// them. It is the in-process part of BenchmarkScaleStateLoadAfterKill9 (internal/vpc/vpccmd),
// which times the real binary: this one can be profiled (-cpuprofile) without the process's
// start and the client around it.
func BenchmarkScaleStateOpen(b *testing.B) {
	total := 100000
	if v := os.Getenv("PODSG_SCALE_ENIS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("PODSG_SCALE_ENIS=%q: want a number of at least 100", v)
		}
		total = n
	}
	path := filepath.Join(b.TempDir(), "state.db")
	opts := state.Options{Path: path, Region: vpctest.Region}
	store, err := state.Open(b.Context(), opts)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := vpctest.SeedFleet(b.Context(), store, vpctest.FleetSpec{Nodes: total / 52, BranchesPerNode: 50,
		TrunkTags: func(int, string) state.Tags { return state.Tags{"cluster": "scale"} },
		BranchTags: func(node int, trunk string, vlan int) state.Tags {
			return state.Tags{"cluster": "scale", "trunk": trunk, "node": strconv.Itoa(node), "pod": strconv.Itoa(vlan)}
		}}); err != nil {
		b.Fatal(err)
	}
	var want int
	_ = store.View(func(tx *state.Tx) error { want = len(tx.NetworkInterfaceIDs()); return nil })
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		s, err := state.Open(b.Context(), opts)
		if err != nil {
			b.Fatal(err)
		}
		var got int
		_ = s.View(func(tx *state.Tx) error { got = len(tx.NetworkInterfaceIDs()); return nil })
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		if got != want {
			b.Fatalf("opened %d ENIs, want %d", got, want)
		}
	}
	b.ReportMetric(float64(want), "enis")
}
