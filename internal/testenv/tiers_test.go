package testenv

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestTierSkip pins PODSG_TEST_TIER's semantics for a test outside the unit tier.
func TestTierSkip(t *testing.T) {
	tests := map[string]struct {
		tier    string
		strict  bool
		skip    bool
		errWith string
	}{
		"unset: every tier runs":            {tier: "", skip: false},
		"unset under make test":             {tier: "", strict: true, skip: false},
		"unit: skips":                       {tier: "unit", skip: true},
		"unit under make test: contradicts": {tier: "unit", strict: true, errWith: "contradict"},
		"unknown tier":                      {tier: "privileged", errWith: `PODSG_TEST_TIER="privileged"`},
		"case matters":                      {tier: "Unit", errWith: `set it to "unit"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			skip, err := tierSkip(tc.tier, tc.strict, "builds x")
			if tc.errWith != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errWith) {
					t.Fatalf("tierSkip(%q, %v) = %q, %v; want an error with %q", tc.tier, tc.strict, skip, err, tc.errWith)
				}
				return
			}
			if err != nil || (skip != "") != tc.skip {
				t.Fatalf("tierSkip(%q, %v) = %q, %v; want skip %v", tc.tier, tc.strict, skip, err, tc.skip)
			}
			if tc.skip && !strings.Contains(skip, "builds x") {
				t.Errorf("skip message %q does not say what the test needs", skip)
			}
		})
	}
}

// TestUnitTierSkipsEveryGate: under PODSG_TEST_TIER=unit each gate skips the test with the
// tier's message, whatever this machine has (root, KUBEBUILDER_ASSETS, packages, go).
func TestUnitTierSkipsEveryGate(t *testing.T) {
	t.Setenv(TierEnv, UnitTier)
	t.Setenv(StrictEnv, "")
	gates := map[string]func(testing.TB){
		"RequireRoot":  RequireRoot,
		"KubeBinDir":   func(t testing.TB) { KubeBinDir(t) },
		"Start":        func(t testing.TB) { Start(t, Options{}) },
		"Require":      func(t testing.TB) { Require(t, GoToolchain, Coreutils) },
		"Build":        func(t testing.TB) { Build(t, "github.com/podsg/podsg/cmd/podsg-no-such-command") },
		"StartProcess": func(t testing.TB) { _, _ = StartProcess(t, "/podsg-no-such-program") },
	}
	for name, gate := range gates {
		r := run(t, gate)
		if !strings.Contains(r.skipped, TierEnv+"="+UnitTier) {
			t.Errorf("%s under %s=%s: skipped %q, failed %q; want a skip that names the tier", name, TierEnv, UnitTier, r.skipped, r.failed)
		}
	}
}

// recorder is a testing.TB whose Skip and Fatal record their message and end the goroutine,
// so that a test can look at how a gate ended a test.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) { r.end(&r.skipped, fmt.Sprint(args...)) }

func (r *recorder) Skipf(format string, args ...any) { r.end(&r.skipped, fmt.Sprintf(format, args...)) }

func (r *recorder) SkipNow() { r.end(&r.skipped, "SkipNow") }

func (r *recorder) Fatal(args ...any) { r.end(&r.failed, fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) { r.end(&r.failed, fmt.Sprintf(format, args...)) }

func (r *recorder) Errorf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func (r *recorder) end(field *string, msg string) {
	*field = msg
	runtime.Goexit()
}

// run calls gate with a recorder on a goroutine of its own, which Skip and Fatal end.
func run(t *testing.T, gate func(testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		gate(r)
	}()
	<-done
	return r
}
