package suitereport

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

const sctpSkipped = "excluded by --skip: the kernel has no SCTP"

func notSelected(name string) string {
	if strings.Contains(name, "[Feature:SCTPConnectivity]") {
		return sctpSkipped
	}
	return "not selected"
}

func TestGinkgo(t *testing.T) {
	const netpol = "[sig-network] Netpol"
	for _, tc := range []struct {
		name, fixture, match string
		want                 Counts
	}{
		{
			name: "specs by state, skips with their reasons, other SIGs left out", fixture: "ginkgo-netpol.json", match: netpol,
			want: Counts{
				Passed: []string{"[sig-network] Netpol NetworkPolicy between server and client should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]"},
				Failed: []string{
					"[sig-network] Netpol NetworkPolicy between server and client should enforce policy based on Ports [Feature:NetworkPolicy]",
					"[sig-network] Netpol [LinuxOnly] NetworkPolicy between server and client using UDP should support a 'default-deny-ingress' policy [Feature:NetworkPolicy] (timedout)",
				},
				Skipped: []Skip{
					{
						Name:   "[sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]",
						Reason: sctpSkipped,
					},
					{Name: "[sig-network] Netpol API should support creating NetworkPolicy API operations", Reason: "Only supported for providers [gce] (not skeleton)"},
				},
			},
		},
		{
			name: "a failed BeforeSuite is a failure even though every spec only skipped", fixture: "ginkgo-setup-failed.json", match: netpol,
			want: Counts{
				Failed:  []string{"[SynchronizedBeforeSuite] (failed)"},
				Skipped: []Skip{{Name: "[sig-network] Netpol NetworkPolicy between server and client should support allow-all policy [Feature:NetworkPolicy]", Reason: "not selected"}},
			},
		},
		{
			name: "a suite that failed with no failed node (interrupted) is a failure", fixture: "ginkgo-interrupted.json", match: netpol,
			want: Counts{
				Passed: []string{"[sig-network] Netpol NetworkPolicy between server and client should support allow-all policy [Feature:NetworkPolicy]"},
				Failed: []string{"suite failed: Interrupted by Timeout"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Ginkgo(bytes.NewReader(readFixture(t, tc.fixture)), tc.match, notSelected)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Ginkgo() =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestGinkgoRejectsWhatIsNotAReport(t *testing.T) {
	for _, in := range []string{"", "[]", "{\"SuiteSucceeded\": true}", "Ran 3 of 7000 Specs"} {
		if c, err := Ginkgo(strings.NewReader(in), "x", nil); err == nil {
			t.Errorf("Ginkgo(%q) = %v, want an error", in, c)
		}
	}
}

func TestGoTestJSON(t *testing.T) {
	mixed := readFixture(t, "gotest-mixed.json")
	lines := bytes.SplitAfter(mixed, []byte("\n"))
	// The stream up to the skipped subtest's end: the binary died in the next subtest.
	var cut []byte
	for _, l := range lines {
		cut = append(cut, l...)
		if bytes.Contains(l, []byte(`"Action":"skip"`)) {
			break
		}
	}
	namedPortSkip := Skip{Name: "CNPAdminTierEgressNamedPort", Reason: "Skipping CNPAdminTierEgressNamedPort: suite does not support ClusterNetworkPolicyNamedPorts"}
	for _, tc := range []struct {
		name string
		in   []byte
		want Counts
	}{
		{
			name: "direct subtests by outcome, nested ones not counted", in: mixed,
			want: Counts{Passed: []string{"CNPAdminTierIngressTCP"}, Failed: []string{"CNPBaselineTierGress"}, Skipped: []Skip{namedPortSkip}},
		},
		{
			name: "a fatal set-up before any subtest is a failure", in: readFixture(t, "gotest-setup-fatal.json"),
			want: Counts{Failed: []string{"TestConformance failed outside its subtests (set-up)"}},
		},
		{
			name: "a stream that ends inside the parent is a failure", in: cut,
			want: Counts{
				Passed:  []string{"CNPAdminTierIngressTCP"},
				Failed:  []string{"TestConformance did not finish (the test binary ended before it)"},
				Skipped: []Skip{namedPortSkip},
			},
		},
		{
			name: "no events at all", in: nil,
			want: Counts{Failed: []string{"TestConformance did not finish (the test binary ended before it)"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := GoTestJSON(bytes.NewReader(tc.in), "TestConformance")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("GoTestJSON() =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestGoTestJSONRejectsText(t *testing.T) {
	if c, err := GoTestJSON(strings.NewReader("--- PASS: TestConformance/CNPAdminTierIngressTCP (1.00s)\n"), "TestConformance"); err == nil {
		t.Errorf("GoTestJSON(text) = %v, want an error", c)
	}
}

func TestSkipReasons(t *testing.T) {
	c := Counts{Skipped: []Skip{{"a", "no SCTP"}, {"b", "experimental"}, {"c", "no SCTP"}, {"d", "another"}}}
	want := []string{"2: no SCTP", "1: another", "1: experimental"}
	if got := c.SkipReasons(); !reflect.DeepEqual(got, want) {
		t.Errorf("SkipReasons() = %q, want %q", got, want)
	}
	if got := c.String(); got != "0 passed, 0 failed, 4 skipped" {
		t.Errorf("String() = %q", got)
	}
}
