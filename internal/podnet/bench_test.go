package podnet_test

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/testenv"
)

// benchPods is how many pods of each kind a benchmark iteration sets up and tears down.
const benchPods = 50

// BenchmarkAddDel measures podnet's ADD and DEL, one pod at a time, for benchPods branch pods
// (strict mode, each with its own vxlan sub-interface, table and rules) and benchPods regular
// pods on one node of the miniature VPC. It reports the median and 99th percentile per pod
// (of 50 samples per iteration, p99 is the slowest); namespace creation is not timed.
func BenchmarkAddDel(b *testing.B) {
	for _, kind := range []string{podstate.KindBranch, podstate.KindRegular} {
		b.Run(kind, func(b *testing.B) {
			w := setup(b)
			var adds, dels []time.Duration
			for range b.N {
				a, d := addDelPods(b, w, kind)
				adds, dels = append(adds, a...), append(dels, d...)
			}
			testenv.ReportLatencies(b, "add", adds)
			testenv.ReportLatencies(b, "del", dels)
		})
	}
}

func addDelPods(b *testing.B, w *world, kind string) (adds, dels []time.Duration) {
	b.Helper()
	recs, netns := make([]*podstate.Record, benchPods), make([]ns.NetNS, benchPods)
	for i := range benchPods {
		recs[i], netns[i] = benchRecord(kind, i), newNS(b)
	}
	for i, rec := range recs {
		start := time.Now()
		if err := add(b, w, netns[i], rec); err != nil {
			b.Fatalf("ADD %s: %v", rec.PodName, err)
		}
		adds = append(adds, time.Since(start))
	}
	for i, rec := range recs {
		start := time.Now()
		if err := inNode(b, w, func() error { return podnet.Del(netns[i].Path(), rec) }); err != nil {
			b.Fatalf("DEL %s: %v", rec.PodName, err)
		}
		dels = append(dels, time.Since(start))
	}
	for i, rec := range recs {
		expectClean(b, w, netns[i], rec)
	}
	return adds, dels
}

func benchRecord(kind string, i int) *podstate.Record {
	name := fmt.Sprintf("%s-%d", kind, i)
	if kind == podstate.KindBranch {
		return branchPod(name, fmt.Sprintf("10.30.0.%d", 10+i), 10+i, fmt.Sprintf("02:3b:a8:a7:9d:%02x", i), podstate.ModeStrict)
	}
	return &podstate.Record{Version: podstate.Version, ContainerID: "c-" + name, IfName: "eth0", PodNamespace: "default", PodName: name,
		Kind: podstate.KindRegular, IP: netip.AddrFrom4([4]byte{10, 99, 0, byte(100 + i)}), HostVeth: podnet.HostVethName("eni", "default", name)}
}
