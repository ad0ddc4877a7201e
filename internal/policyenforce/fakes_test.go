package policyenforce_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/policyenforce"
)

// fakeNFT is a stateful nftables: the installed script and its counters, which a test sets
// as if packets had been dropped. Scripts records every ruleset installed, in order.
type fakeNFT struct {
	mu       sync.Mutex
	scripts  []string
	counters map[string]netpol.CounterValue
	fail     error
	applied  chan string // if set, each installed script is sent here
}

func (f *fakeNFT) Apply(_ context.Context, script string) error {
	f.mu.Lock()
	if f.fail != nil {
		f.mu.Unlock()
		return f.fail
	}
	f.scripts = append(f.scripts, script)
	// The table is replaced: its counters are the ones the script declares.
	f.counters = declaredCounters(script)
	ch := f.applied
	f.mu.Unlock()
	if ch != nil {
		ch <- script
	}
	return nil
}

func (f *fakeNFT) Counters(context.Context) (map[string]netpol.CounterValue, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]netpol.CounterValue{}
	for k, v := range f.counters {
		out[k] = v
	}
	return out, nil
}

func (f *fakeNFT) last() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.scripts) == 0 {
		return ""
	}
	return f.scripts[len(f.scripts)-1]
}

func (f *fakeNFT) count(name string, packets uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counters[name] = netpol.CounterValue{Packets: packets, Bytes: packets * 100}
}

func (f *fakeNFT) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// declaredCounters reads "counter NAME {\n packets P bytes B" declarations back.
func declaredCounters(script string) map[string]netpol.CounterValue {
	out := map[string]netpol.CounterValue{}
	lines := strings.Split(script, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 3 && f[0] == "counter" && f[2] == "{" && i+1 < len(lines) {
			var v netpol.CounterValue
			if _, err := fmtSscanf(lines[i+1], &v); err == nil {
				out[f[1]] = v
			}
		}
	}
	return out
}

// fakeSource is the cluster's state, set by the test.
type fakeSource struct {
	mu      sync.Mutex
	in      policyenforce.Inputs
	changed chan struct{}
}

func newFakeSource(in policyenforce.Inputs) *fakeSource {
	return &fakeSource{in: in, changed: make(chan struct{})}
}

func (s *fakeSource) Snapshot() (policyenforce.Inputs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.in, nil
}

func (s *fakeSource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *fakeSource) set(fn func(*policyenforce.Inputs)) {
	s.mu.Lock()
	fn(&s.in)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

var errNFT = errors.New("nft: Operation not permitted")

func fmtSscanf(line string, v *netpol.CounterValue) (int, error) {
	return fmt.Sscanf(strings.TrimSpace(line), "packets %d bytes %d", &v.Packets, &v.Bytes)
}
