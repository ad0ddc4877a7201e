package vpccmd

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// BenchmarkScaleStateLoadAfterKill9 is how long the podsg-vpc binary takes to serve again after
// kill -9 with a fleet's state: PODSG_SCALE_ENIS ENIs (default 100,000) on trunk nodes of 50
// branches each, seeded through the state layer into the state file. One op is a SIGKILL of
// the running process, then a new one started on the same state directory, until it answers
// a DescribeNetworkInterfaces: from the signal to the answer, the old process's exit and the
// new one's start included (its listening line is polled every 50 ms).
func BenchmarkScaleStateLoadAfterKill9(b *testing.B) {
	total := 100000
	if v := os.Getenv("PODSG_SCALE_ENIS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			b.Fatalf("PODSG_SCALE_ENIS=%q: want a number of at least 100", v)
		}
		total = n
	}
	bin := testenv.Build(b, "github.com/podsg/podsg/cmd/podsg-vpc")
	dir := b.TempDir()
	store, err := state.Open(b.Context(), state.Options{Path: filepath.Join(dir, "state.db"), Region: vpctest.Region})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := vpctest.SeedFleet(b.Context(), store, vpctest.FleetSpec{Nodes: total / 52, BranchesPerNode: 50,
		BranchTags: func(int, string, int) state.Tags { return state.Tags{"cluster": "scale"} }}); err != nil {
		b.Fatal(err)
	}
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	serve := func() *testenv.Process {
		p, url := startBinary(b, bin, dir)
		out, err := vpctest.NewClient(url, "", "").DescribeNetworkInterfaces(b.Context(),
			&ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5)})
		if err != nil || len(out.NetworkInterfaces) != 5 {
			b.Fatalf("the restarted podsg-vpc does not serve the state: %v", err)
		}
		return p
	}
	p := serve()
	var worst time.Duration
	for b.Loop() {
		start := time.Now()
		p.Kill()
		testenv.Eventually(b, 10*time.Second, func(context.Context) error {
			if !p.Exited() {
				return errors.New("the killed podsg-vpc has not exited")
			}
			return nil
		})
		p = serve()
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(info.Size())/(1<<20), "MiB-state")
	b.ReportMetric(worst.Seconds(), "worst-s")
}
