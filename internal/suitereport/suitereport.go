// Package suitereport counts the results of an upstream test suite from the machine-readable
// report the suite itself writes, so that the numbers podsg publishes (README, make
// conformance-netpol) are the suite's own: passed, failed and skipped, each skip with its reason.
// Two formats: Ginkgo's JSON report (Kubernetes' e2e.test, --report-complete-ginkgo) and the
// `go test -json` event stream (go tool test2json) of a Go test binary (network-policy-api's
// conformance tests). Nothing here greps human-readable output.
package suitereport

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Counts are a suite's results, by test name.
type Counts struct {
	Passed []string
	// Failed names each test that did not pass or skip, with its state when that is not
	// "failed" (panicked, timedout, ...); failures outside any test (a suite's set-up) are here
	// too, so a suite that broke before running a test never reads as clean.
	Failed  []string
	Skipped []Skip
	// Notes are the suite's own reasons for ending as it did, beyond any one test (Ginkgo's
	// "Interrupted by Timeout").
	Notes []string
}

// Skip is one skipped test and why.
type Skip struct {
	Name, Reason string
}

func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", len(c.Passed), len(c.Failed), len(c.Skipped))
}

// SkipReasons groups the skipped tests by reason, "N: reason" per line, most frequent first.
func (c Counts) SkipReasons() []string {
	n := map[string]int{}
	for _, s := range c.Skipped {
		n[s.Reason]++
	}
	reasons := make([]string, 0, len(n))
	for r := range n {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool {
		if n[reasons[i]] != n[reasons[j]] {
			return n[reasons[i]] > n[reasons[j]]
		}
		return reasons[i] < reasons[j]
	})
	out := make([]string, 0, len(reasons))
	for _, r := range reasons {
		out = append(out, fmt.Sprintf("%d: %s", n[r], r))
	}
	return out
}

// ginkgoReport is the part of Ginkgo v2's JSON report (types.Report, one per suite) read here.
type ginkgoReport struct {
	SuiteSucceeded             bool
	SpecialSuiteFailureReasons []string
	SpecReports                []ginkgoSpec
}

type ginkgoSpec struct {
	ContainerHierarchyTexts []string
	LeafNodeType            string
	LeafNodeText            string
	State                   string
	Failure                 *struct{ Message string }
}

// fullText is the spec's name as Ginkgo prints it (types.SpecReport.FullText).
func (s ginkgoSpec) fullText() string {
	texts := append([]string{}, s.ContainerHierarchyTexts...)
	if s.LeafNodeText != "" {
		texts = append(texts, s.LeafNodeText)
	}
	return strings.Join(texts, " ")
}

// Ginkgo counts the specs of a Ginkgo JSON report whose full text contains match. A spec the
// run did not select (--focus, --skip) is in the report as skipped with no failure message;
// notSelected names the reason for it from its full text (e.g. which --skip pattern excluded it
// and why). A spec that skipped itself at run time (Skip()) keeps its own message. Suite-level
// nodes (BeforeSuite, AfterSuite, ReportAfterSuite, ...) count only when they did not pass, as
// failures, and so does a suite that reports failure with no failed node.
func Ginkgo(r io.Reader, match string, notSelected func(fullText string) string) (Counts, error) {
	var reports []ginkgoReport
	if err := json.NewDecoder(r).Decode(&reports); err != nil {
		return Counts{}, fmt.Errorf("decoding the Ginkgo JSON report: %w", err)
	}
	if len(reports) == 0 {
		return Counts{}, fmt.Errorf("the Ginkgo JSON report holds no suite")
	}
	var c Counts
	for _, rep := range reports {
		before := len(c.Failed)
		for _, s := range rep.SpecReports {
			c.addSpec(s, match, notSelected)
		}
		if !rep.SuiteSucceeded && len(c.Failed) == before {
			c.Failed = append(c.Failed, "suite failed: "+strings.Join(rep.SpecialSuiteFailureReasons, "; "))
		} else {
			c.Notes = append(c.Notes, rep.SpecialSuiteFailureReasons...)
		}
	}
	return c, nil
}

func (c *Counts) addSpec(s ginkgoSpec, match string, notSelected func(string) string) {
	name := s.fullText()
	if s.LeafNodeType != "It" {
		if s.State != "passed" && s.State != "skipped" {
			c.Failed = append(c.Failed, strings.TrimSpace(fmt.Sprintf("[%s] %s", s.LeafNodeType, name))+" ("+s.State+")")
		}
		return
	}
	if !strings.Contains(name, match) {
		return
	}
	switch s.State {
	case "passed":
		c.Passed = append(c.Passed, name)
	case "skipped", "pending":
		reason := s.State
		switch {
		case s.Failure != nil && s.Failure.Message != "":
			reason = s.Failure.Message
		case s.State == "skipped" && notSelected != nil:
			reason = notSelected(name)
		}
		c.Skipped = append(c.Skipped, Skip{Name: name, Reason: reason})
	case "failed":
		c.Failed = append(c.Failed, name)
	default: // panicked, interrupted, aborted, timedout
		c.Failed = append(c.Failed, name+" ("+s.State+")")
	}
}

// testEvent is one event of `go test -json` (cmd/test2json).
type testEvent struct {
	Action string
	Test   string
	Output string
}

// GoTestJSON counts the subtests directly under parent (parent/Name, not parent/Name/sub) in a
// `go test -json` event stream. A skipped subtest's reason is the last line it logged (its
// t.Skip message). If parent itself failed with no failed subtest (a fatal set-up), or the
// binary failed outside any test, that is a failure too; so is a stream in which parent never
// ended (the binary died).
func GoTestJSON(r io.Reader, parent string) (Counts, error) {
	g := goTestCounter{parent: parent, lastLine: map[string]string{}}
	dec := json.NewDecoder(r)
	for {
		var e testEvent
		err := dec.Decode(&e)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Counts{}, fmt.Errorf("decoding go test -json events: %w", err)
		}
		g.add(e)
	}
	return g.counts(), nil
}

// goTestCounter accumulates GoTestJSON's counts event by event.
type goTestCounter struct {
	parent                                 string
	c                                      Counts
	lastLine                               map[string]string
	parentDone, parentFailed, binaryFailed bool
}

func (g *goTestCounter) add(e testEvent) {
	ended := e.Action == "pass" || e.Action == "fail" || e.Action == "skip"
	switch e.Test {
	case g.parent:
		if ended {
			g.parentDone, g.parentFailed = true, e.Action == "fail"
		}
		return
	case "":
		g.binaryFailed = g.binaryFailed || e.Action == "fail"
		return
	}
	name, ok := strings.CutPrefix(e.Test, g.parent+"/")
	if !ok || strings.Contains(name, "/") {
		return
	}
	switch e.Action {
	case "output":
		if l := logLine(e.Output); l != "" {
			g.lastLine[name] = l
		}
	case "pass":
		g.c.Passed = append(g.c.Passed, name)
	case "fail":
		g.c.Failed = append(g.c.Failed, name)
	case "skip":
		g.c.Skipped = append(g.c.Skipped, Skip{Name: name, Reason: g.lastLine[name]})
	}
}

func (g *goTestCounter) counts() Counts {
	c := g.c
	switch {
	case !g.parentDone:
		c.Failed = append(c.Failed, g.parent+" did not finish (the test binary ended before it)")
	case g.parentFailed && len(c.Failed) == 0:
		c.Failed = append(c.Failed, g.parent+" failed outside its subtests (set-up)")
	case g.binaryFailed && !g.parentFailed && len(c.Failed) == 0:
		c.Failed = append(c.Failed, "the test binary failed outside "+g.parent)
	}
	return c
}

// logLine is the message of a t.Log line ("    file.go:12: message"), or "" for the testing
// package's own framing lines (=== RUN, --- SKIP, ...).
func logLine(out string) string {
	l := strings.TrimSpace(out)
	if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
		return ""
	}
	if file, msg, ok := strings.Cut(l, ": "); ok && strings.Contains(file, ".go:") && !strings.Contains(file, " ") {
		return msg
	}
	return l
}
