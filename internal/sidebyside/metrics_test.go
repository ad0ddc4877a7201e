//go:build awsrc

package sidebyside

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// counts are the server's request counters, by action and code, less this harness's own calls.
type counts map[string]map[string]float64

var sample = regexp.MustCompile(`^podsg_vpc_requests_total\{action="([^"]*)",code="([^"]*)"\} (\S+)$`)

// requests scrapes the server's /metrics (podsg_vpc_requests_total).
func (v *localVPC) requests(t testing.TB) counts {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, v.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping the local VPC's metrics: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	out := counts{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := sample.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", sc.Text(), err)
		}
		if out[m[1]] == nil {
			out[m[1]] = map[string]float64{}
		}
		out[m[1]][m[2]] = n
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for action, codes := range v.own {
		for code, n := range codes {
			if out[action] == nil {
				out[action] = map[string]float64{}
			}
			out[action][code] -= n
		}
	}
	return out
}

// callsBetween sums the calls of the actions pick selects from before to after: all of them,
// and those that were throttled.
func callsBetween(before, after counts, pick func(action string) bool) (all, throttled float64) {
	for action, codes := range after {
		if !pick(action) {
			continue
		}
		for code, n := range codes {
			d := n - before[action][code]
			all += d
			if code == "RequestLimitExceeded" {
				throttled += d
			}
		}
	}
	return all, throttled
}

// mutating is what EC2's throttling counts as a mutating call: everything but Describe*.
func mutating(action string) bool { return !strings.HasPrefix(action, "Describe") }

func describing(action string) bool { return strings.HasPrefix(action, "Describe") }

func anyAction(string) bool { return true }

// procUsage is what a process used: CPU (user + system) and its peak resident set.
type procUsage struct {
	cpu     time.Duration
	peakRSS int64 // bytes
}

func (u *procUsage) add(o procUsage) {
	u.cpu += o.cpu
	u.peakRSS = max(u.peakRSS, o.peakRSS)
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on every Linux ABI.
const clockTicks = 100

// readProcUsage reads utime and stime from /proc/PID/stat and VmHWM from /proc/PID/status.
func readProcUsage(pid int) (procUsage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procUsage{}, fmt.Errorf("reading the controller's CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
	f := strings.Fields(rest)
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return procUsage{}, fmt.Errorf("parsing /proc/%d/stat %q", pid, stat)
	}
	u := procUsage{cpu: time.Duration(utime+stime) * time.Second / clockTicks}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procUsage{}, fmt.Errorf("reading the controller's memory: %w", err)
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return procUsage{}, fmt.Errorf("parsing VmHWM %q: %w", v, err)
			}
			u.peakRSS = kb * 1024
		}
	}
	return u, nil
}
