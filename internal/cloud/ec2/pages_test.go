package ec2

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/utils/clock"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/budget"
)

// fakePager serves pages of ints, failing the page at index failAt (-1: none).
type fakePager struct {
	pages  [][]int
	next   int
	failAt int
	err    error
}

func (p *fakePager) HasMorePages() bool { return p.next < len(p.pages) }

func (p *fakePager) NextPage(context.Context, ...func(*ec2.Options)) ([]int, error) {
	i := p.next
	p.next++
	if i == p.failAt {
		return nil, p.err
	}
	return p.pages[i], nil
}

// TestAllPages pins the pagination loop every describe uses: all pages in order, each page one
// call (limited, counted, its error classified), nothing on error.
func TestAllPages(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "RequestLimitExceeded", Message: "slow down"}
	tests := map[string]struct {
		pages     [][]int
		failAt    int
		err       error
		want      []int
		wantKind  error
		wantCalls int
	}{
		"no page":           {failAt: -1},
		"one empty page":    {pages: [][]int{{}}, failAt: -1, wantCalls: 1},
		"pages in order":    {pages: [][]int{{1, 2}, {3}, {4, 5}}, failAt: -1, want: []int{1, 2, 3, 4, 5}, wantCalls: 3},
		"a failed page":     {pages: [][]int{{1, 2}, {3}}, failAt: 1, err: throttled, wantKind: cloud.ErrThrottled, wantCalls: 2},
		"a transport error": {pages: [][]int{{1}}, failAt: 0, err: context.DeadlineExceeded, wantKind: context.DeadlineExceeded, wantCalls: 1},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := newMetrics(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			wide, err := budget.New(clock.RealClock{}, 1e6, 1000)
			if err != nil {
				t.Fatal(err)
			}
			c := &Client{describe: wide, mutating: wide, metrics: m}
			p := &fakePager{pages: tc.pages, failAt: tc.failAt, err: tc.err}
			got, err := allPages(t.Context(), c, "DescribeThings", p, func(page []int) []int { return page })
			if !errors.Is(err, tc.wantKind) || (err == nil) != (tc.wantKind == nil) {
				t.Fatalf("err = %v, want kind %v", err, tc.wantKind)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("items = %v, want %v", got, tc.want)
			}
			var calls float64
			for _, result := range []string{"ok", "error", "RequestLimitExceeded"} {
				calls += testutil.ToFloat64(m.requests.WithLabelValues("DescribeThings", string(cloud.PurposeOther), result))
			}
			if int(calls) != tc.wantCalls {
				t.Errorf("%v calls counted, want %d", calls, tc.wantCalls)
			}
		})
	}
}

// TestInChunks: values are read filterValues at a time, chunks at once up to chunkReaders,
// the results come back in the order of the values whatever order the reads end in, and an
// error of one chunk is the call's error.
func TestInChunks(t *testing.T) {
	values := make([]string, 2*filterValues+50)
	for i := range values {
		values[i] = fmt.Sprint(i)
	}
	var mu sync.Mutex
	running, most := 0, 0
	release := make(chan struct{})
	got, err := inChunks(t.Context(), values, func(_ context.Context, chunk []string) ([]string, error) {
		if len(chunk) > filterValues {
			return nil, fmt.Errorf("a chunk of %d values", len(chunk))
		}
		mu.Lock()
		running++
		most = max(most, running)
		if running == 3 { // every chunk is in flight: let them end, the last first
			close(release)
		}
		mu.Unlock()
		<-release
		mu.Lock()
		running--
		mu.Unlock()
		return slices.Clone(chunk), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, values) {
		t.Fatalf("got %d values, out of order or not all of them", len(got))
	}
	if most != 3 {
		t.Fatalf("%d chunks read at once, want all 3", most)
	}
	boom := errors.New("boom")
	if _, err := inChunks(t.Context(), values, func(_ context.Context, chunk []string) ([]string, error) {
		if chunk[0] == values[filterValues] {
			return nil, boom
		}
		return chunk, nil
	}); !errors.Is(err, boom) {
		t.Fatalf("error %v, want the failing chunk's", err)
	}
}
