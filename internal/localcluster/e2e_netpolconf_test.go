//go:build netpolconf

package localcluster_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/images"
	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/suitereport"
	"github.com/podsg/podsg/internal/testenv"
)

// The upstream NetworkPolicy conformance suites against the local cluster with podsg enforcing
// network policy (make conformance-netpol; hack/conformance-netpol.sh builds the suites with
// hack/e2e-bin.sh and runs this under the machine-wide cluster lock). Each suite runs
// unmodified, as a subprocess, against the admin kubeconfig; the test only builds and imports
// the agnhost image they run, and counts what they report.
//
// Environment (set by the script):
//
//	PODSG_NETPOL_E2E_DIR    hack/e2e-bin.sh's Kubernetes directory (e2e.test, agnhost, ginkgo)
//	PODSG_NETPOL_NPAPI_DIR  its network-policy-api directory (conformance.test)
//	PODSG_NETPOL_CONF_OUT   a directory for the suites' logs and reports (default: a temp dir)
//	PODSG_NETPOL_CONF_FOCUS a regexp narrowing the e2e suite further (optional; for debugging)
//	PODSG_NETPOL_CONF_RUN   a -run pattern for network-policy-api's tests under TestConformance (optional)
//	PODSG_NETPOL_CONF_SKIP  "e2e" or "npapi" skips that suite (optional; for debugging)
//	PODSG_NETPOL_CONF_PROCS the e2e suite's parallel Ginkgo processes (default e2eProcs)
//
// Build tag netpolconf: the suites take minutes to build and tens of minutes to run, so this
// is not part of make test.

// e2eFocus selects Kubernetes' NetworkPolicy tests: "[sig-network] Netpol" and "[sig-network]
// Netpol [LinuxOnly]" (the data path), "[sig-network] Netpol API" (the API's validation).
const e2eName = "[sig-network] Netpol"

// e2eFocus is e2eName as a Ginkgo --focus regexp.
var e2eFocus = regexp.QuoteMeta(e2eName)

// skipRule is a spec pattern the run excludes, and why.
type skipRule struct{ pattern, reason string }

// noSCTP is why the SCTP tests cannot run on this project's machines.
const noSCTP = "the kernel has no SCTP (no sctp module; socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails), so no SCTP connection can be made, allowed or not"

// e2eSkips names what cannot run here, each with the reason. Without SCTP in the kernel, the
// SCTP connectivity tests (the "[Feature:SCTPConnectivity]" Describe) are skipped. The tests that
// only put SCTP in a policy and probe TCP still run.
func e2eSkips(sctp bool) []skipRule {
	if sctp {
		return nil
	}
	return []skipRule{{pattern: `\[Feature:SCTPConnectivity\]`, reason: noSCTP}}
}

// npapiSkip is the -test.skip pattern for the network-policy-api tests: without SCTP in the
// kernel, the tests that exist only for SCTP (CNPAdminTierIngressSCTP, …EgressSCTP, and the
// baseline tier's). Tests that mix SCTP into TCP and UDP checks still run; their SCTP checks fail.
func npapiSkip(sctp bool) string {
	if sctp {
		return ""
	}
	return "SCTP$"
}

// kernelSCTP says whether this kernel can open an SCTP socket.
func kernelSCTP() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
	if err != nil {
		return false
	}
	_ = unix.Close(fd)
	return true
}

// npapiFeatures are the network-policy-api conformance features podsg claims: the standard
// ClusterNetworkPolicy tests of both tiers (admin and baseline). The experimental ones
// (ClusterNetworkPolicyNamedPorts, ClusterNetworkPolicyEgressNodePeers) are not claimed.
const npapiFeatures = "ClusterNetworkPolicy"

func TestNetpolConformance(t *testing.T) {
	testenv.RequireRoot(t)
	skip := os.Getenv("PODSG_NETPOL_CONF_SKIP")
	e2eFiles := []string{"e2e.test", "agnhost", "ginkgo"}
	if skip == "e2e" {
		e2eFiles = []string{"agnhost"}
	}
	e2eDir, npapiDir := suiteDir(t, "PODSG_NETPOL_E2E_DIR", e2eFiles...), suiteDir(t, "PODSG_NETPOL_NPAPI_DIR", "conformance.test")
	out := os.Getenv("PODSG_NETPOL_CONF_OUT")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	sctp := kernelSCTP()
	if !sctp {
		t.Log("this kernel has no SCTP: the SCTP-only tests are skipped, and agnhost porter serves no SCTP port")
	}
	agnhostImages := agnhostImages(t, e2eDir, sctp, skip != "e2e")

	o := localcluster.Options{Nodes: 2, KubeBinDir: testenv.KubeBinDir(t), BinDir: buildAll(t), StateDir: varLibStateDir(t)}
	downAtCleanup(t, o)
	start := time.Now()
	if err := localcluster.Up(t.Context(), o, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	t.Logf("podsg local up --nodes %d: %v", o.Nodes, time.Since(start).Round(time.Second))
	start = time.Now()
	if err := localcluster.ImportImages(t.Context(), o, agnhostImages, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	t.Logf("agnhost imported under %d names: %v", len(agnhostImages), time.Since(start).Round(time.Second))

	var summary []string
	if skip != "e2e" {
		t.Run("kubernetes e2e Netpol", func(t *testing.T) {
			procs, load := e2eProcs(t), loadAverage(t)
			c, took := runE2E(t, o, e2eDir, out, procs, e2eSkips(sctp))
			name := fmt.Sprintf("Kubernetes %s e2e, %s, %d Ginkgo processes", kubeVersion(e2eDir), e2eName, procs)
			if f := os.Getenv("PODSG_NETPOL_CONF_FOCUS"); f != "" {
				name += ", partial: PODSG_NETPOL_CONF_FOCUS=" + f
			}
			summary = append(summary, describe(name, c, took, load, loadAverage(t))...)
			check(t, c)
		})
	}
	if skip != "npapi" {
		t.Run("network-policy-api conformance", func(t *testing.T) {
			load := loadAverage(t)
			c, took := runNPAPI(t, o, npapiDir, out, npapiSkip(sctp))
			name := fmt.Sprintf("network-policy-api %s conformance (%s)", npapiVersion(npapiDir), npapiFeatures)
			if r := os.Getenv("PODSG_NETPOL_CONF_RUN"); r != "" {
				name += ", partial: PODSG_NETPOL_CONF_RUN=" + r
			}
			summary = append(summary, describe(name, c, took, load, loadAverage(t))...)
			check(t, c)
		})
	}
	text := strings.Join(summary, "\n") + "\n"
	t.Log("\n" + text)
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), []byte(text), 0o644); err != nil {
		t.Error(err)
	}
}

// suiteDir is the directory an environment variable names, checked to hold files.
func suiteDir(t *testing.T, env string, files ...string) string {
	t.Helper()
	dir := os.Getenv(env)
	if dir == "" {
		t.Fatalf("%s is not set: run make conformance-netpol (hack/conformance-netpol.sh)", env)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("%s: %v (hack/e2e-bin.sh builds it)", env, err)
		}
	}
	return dir
}

// kubeVersion and npapiVersion read the versions from hack/e2e-bin.sh's directory names.
func kubeVersion(dir string) string { return strings.TrimPrefix(filepath.Base(dir), "kube-e2e-") }

func npapiVersion(dir string) string {
	return strings.TrimPrefix(filepath.Base(dir), "network-policy-api-")
}

// agnhostImages is the agnhost image under every name the suites run it by: each agnhost
// reference of the registry.k8s.io/e2e-test-images repository that e2e.test lists, and the
// network-policy-api manifests' AgnhostNPAPI (that one alone when the e2e suite is skipped).
func agnhostImages(t *testing.T, e2eDir string, sctp, e2e bool) []images.Image {
	t.Helper()
	names := []string{images.AgnhostNPAPI}
	if e2e {
		listed, err := exec.Command(filepath.Join(e2eDir, "e2e.test"), "--list-images").Output()
		if err != nil {
			t.Fatalf("e2e.test --list-images: %v", err)
		}
		for _, l := range strings.Fields(string(listed)) {
			if strings.HasPrefix(l, images.AgnhostRepository+":") && !slices.Contains(names, l) {
				names = append(names, l)
			}
		}
		if len(names) < 2 {
			t.Fatalf("e2e.test --list-images names no %s image:\n%s", images.AgnhostRepository, listed)
		}
	}
	bash, err := images.DynamicFiles("/bin/bash", "/bin/bash")
	if err != nil {
		t.Fatal(err)
	}
	var out []images.Image
	for _, n := range names {
		img, err := images.AgnhostImage(n, filepath.Join(e2eDir, "agnhost"), bash, sctp)
		if err != nil {
			t.Fatal(err)
		}
		img, err = images.Rendered(img)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, img)
	}
	return out
}

// describe is a suite's lines of the summary: its counts, its time with the machine's load
// average before and after (a time means little without it on a shared 2-core machine), then
// the skips by reason and each failure.
func describe(suite string, c suitereport.Counts, took time.Duration, loadBefore, loadAfter string) []string {
	lines := []string{fmt.Sprintf("%s: %s in %v (load average %s before, %s after)", suite, c, took, loadBefore, loadAfter)}
	for _, n := range c.Notes {
		lines = append(lines, "  suite: "+n)
	}
	for _, r := range c.SkipReasons() {
		lines = append(lines, "  skipped "+r)
	}
	for _, f := range c.Failed {
		lines = append(lines, "  failed: "+f)
	}
	return lines
}

// loadAverage is the 1-, 5- and 15-minute load averages.
func loadAverage(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		t.Fatalf("/proc/loadavg: %q", data)
	}
	return strings.Join(f[:3], " ")
}

// check fails t for every failed test, and if nothing passed.
func check(t *testing.T, c suitereport.Counts) {
	t.Helper()
	for _, f := range c.Failed {
		t.Errorf("failed: %s", f)
	}
	if len(c.Passed) == 0 {
		t.Error("no test passed")
	}
}

// e2eProcs is how many Ginkgo processes run the e2e specs at once. The Netpol specs are not
// [Serial]: each builds its own namespaces and pods, and most of a spec's time is spent waiting
// for probes that must time out (3 s each, 3 probe workers per process), so a few processes
// overlap that waiting; more than that and the 2-core machine, which also runs both nodes and
// the control plane, slows every probe (docs/testing.md has the measurement).
const defaultE2EProcs = 4

func e2eProcs(t *testing.T) int {
	t.Helper()
	v := os.Getenv("PODSG_NETPOL_CONF_PROCS")
	if v == "" {
		return defaultE2EProcs
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("PODSG_NETPOL_CONF_PROCS=%q: want a positive number", v)
	}
	return n
}

// ginkgoTimeout is the e2e suite's time limit: 100 minutes, or less when the go test deadline
// is nearer, so that Ginkgo stops first, writes its report (the unrun specs as skipped, the
// interrupted ones as failed) and the cluster is still torn down: a go test timeout would
// panic past every cleanup.
func ginkgoTimeout(t *testing.T) time.Duration {
	d := 100 * time.Minute
	if deadline, ok := t.Deadline(); ok {
		if left := time.Until(deadline) - 5*time.Minute; left < d {
			d = max(left, time.Minute)
		}
	}
	return d.Round(time.Second)
}

// runE2E runs e2e.test's NetworkPolicy specs under the Ginkgo CLI in procs parallel processes
// (as Kubernetes' hack/ginkgo-e2e.sh runs e2e.test) and counts Ginkgo's JSON report.
func runE2E(t *testing.T, o localcluster.Options, dir, out string, procs int, skips []skipRule) (suitereport.Counts, time.Duration) {
	t.Helper()
	report := filepath.Join(out, "e2e")
	if err := os.MkdirAll(report, 0o755); err != nil {
		t.Fatal(err)
	}
	focus := e2eFocus
	if f := os.Getenv("PODSG_NETPOL_CONF_FOCUS"); f != "" {
		focus = e2eFocus + ".*" + f
	}
	// The CLI's own flags, then the binary, then after "--" the suite's flags.
	args := []string{
		"--procs=" + strconv.Itoa(procs), "--focus=" + focus, "--no-color", "--silence-skips", "--timeout=" + ginkgoTimeout(t).String(),
		// A spec that hangs says where, every 5 minutes after its first 10.
		"--poll-progress-after=10m", "--poll-progress-interval=5m",
	}
	for _, s := range skips {
		args = append(args, "--skip="+s.pattern)
	}
	args = append(args, filepath.Join(dir, "e2e.test"), "--",
		"--kubeconfig="+o.Kubeconfig(), "--provider=skeleton", "--report-dir="+report,
		// <report>/ginkgo/report.json: every spec with its state and, for a skip, its reason.
		"--report-complete-ginkgo",
		// The nodes' logs are in the cluster's state dir, which the test removes; events of a
		// failed test's namespaces are dumped into the log.
		"--dump-logs-on-failure=true",
	)
	logPath := filepath.Join(out, "e2e.log")
	start := time.Now()
	err := runLogged(t, logPath, filepath.Join(dir, "ginkgo"), nil, args...)
	took := time.Since(start).Round(time.Second)
	f, ferr := os.Open(filepath.Join(report, "ginkgo", "report.json"))
	if ferr != nil {
		t.Fatalf("ginkgo e2e.test (%v): %v; its log: %s", err, ferr, logPath)
	}
	defer f.Close()
	focusRE := regexp.MustCompile(focus)
	c, perr := suitereport.Ginkgo(f, e2eName, func(name string) string {
		for _, s := range skips {
			if regexp.MustCompile(s.pattern).MatchString(name) {
				return "excluded (--skip " + s.pattern + "): " + s.reason
			}
		}
		if !focusRE.MatchString(name) {
			return "not selected by PODSG_NETPOL_CONF_FOCUS"
		}
		return "not run: the suite stopped before it"
	})
	if perr != nil {
		t.Fatalf("ginkgo e2e.test (%v): %v; its log: %s", err, perr, logPath)
	}
	if err != nil && len(c.Failed) == 0 {
		t.Errorf("ginkgo e2e.test: %v with no failure in its report; its log: %s", err, logPath)
	}
	return c, took
}

// runNPAPI runs network-policy-api's conformance tests under go tool test2json and counts the
// top-level ones (TestConformance/<ShortName>) from its event stream. The suite's tests run one
// at a time: none is marked Parallel, and they could not be, since each applies cluster-wide
// ClusterNetworkPolicies to the same base pods.
func runNPAPI(t *testing.T, o localcluster.Options, dir, out, skip string) (suitereport.Counts, time.Duration) {
	t.Helper()
	args := []string{"-test.timeout=60m", "-test.count=1", "-supported-features=" + npapiFeatures,
		"-report-output=" + filepath.Join(out, "npapi-report.yaml"), "-organization=podsg", "-project=podsg",
		"-url=https://github.com/podsg/podsg", "-version=" + npapiVersion(dir), "-contact=podsg"}
	// TestConformance alone: the binary also holds TestConformanceProfiles, which runs the same
	// tests again to write a profile report.
	run := "^TestConformance$"
	if r := os.Getenv("PODSG_NETPOL_CONF_RUN"); r != "" {
		// In parentheses: go test splits a top-level "|" into whole-path alternatives.
		run += "/(" + r + ")"
	}
	args = append(args, "-test.run="+run)
	var excluded []suitereport.Skip
	if skip != "" {
		args = append(args, "-test.skip=^TestConformance$/"+skip)
		excluded = npapiExcluded(t, o, dir, out, run, skip)
	}
	events := filepath.Join(out, "npapi.json")
	start := time.Now()
	err := runTest2JSON(t, events, filepath.Join(dir, "conformance.test"), o, args...)
	took := time.Since(start).Round(time.Second)
	c := countTest2JSON(t, events)
	if err != nil && len(c.Failed) == 0 {
		t.Errorf("conformance.test: %v with no failed test in its events; its log: %s", err, events)
	}
	c.Skipped = append(c.Skipped, excluded...)
	if skip != "" {
		c.Failed = annotateSCTPOnly(t, events, c.Failed)
	}
	return c, took
}

// failedProbe is the suite's line for a probe that did not do what the test expected
// (conformance/utils/kubernetes/helper.go): "FAILED Command was [/agnhost connect … --protocol=P …]".
var failedProbe = regexp.MustCompile(`FAILED Command was \[[^\]]*--protocol=(\w+)`)

// annotateSCTPOnly marks the failed tests whose every failed probe was SCTP: on a kernel
// without SCTP those fail whatever the policy engine does (agnhost connect: "protocol not
// supported"). They stay failures; the note says why. It reads the suite's log lines inside
// the test2json events, only to explain a failure the events already counted.
func annotateSCTPOnly(t *testing.T, eventsPath string, failed []string) []string {
	t.Helper()
	f, err := os.Open(eventsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	protocols := map[string]map[string]bool{} // top-level test → protocols of its failed probes
	dec := json.NewDecoder(f)
	for {
		var e struct{ Action, Test, Output string }
		if dec.Decode(&e) != nil {
			break
		}
		m := failedProbe.FindStringSubmatch(e.Output)
		name, ok := strings.CutPrefix(e.Test, "TestConformance/")
		if m == nil || !ok {
			continue
		}
		name, _, _ = strings.Cut(name, "/")
		if protocols[name] == nil {
			protocols[name] = map[string]bool{}
		}
		protocols[name][m[1]] = true
	}
	out := make([]string, 0, len(failed))
	for _, name := range failed {
		if p := protocols[name]; len(p) == 1 && p["sctp"] {
			name += " (every failed probe was SCTP: " + noSCTP + ")"
		}
		out = append(out, name)
	}
	return out
}

// npapiExcluded names the tests that -test.skip=^TestConformance$/skip keeps from running: go
// test reports nothing for those. It runs them with the suite's every feature exempted, so that
// each skips at once ("suite does not support ClusterNetworkPolicy") without touching the
// cluster (the suite applies its base manifests only when that feature is supported).
func npapiExcluded(t *testing.T, o localcluster.Options, dir, out, run, skip string) []suitereport.Skip {
	t.Helper()
	events := filepath.Join(out, "npapi-excluded.json")
	listRun := run + "/" + skip
	if strings.Contains(run, "/") {
		listRun = run // narrowed by PODSG_NETPOL_CONF_RUN: of those, the ones skip matches
	}
	if err := runTest2JSON(t, events, filepath.Join(dir, "conformance.test"), o,
		"-test.run="+listRun, "-exempt-features="+npapiFeatures); err != nil {
		t.Fatalf("listing the tests -test.skip excludes: %v; see %s", err, events)
	}
	c := countTest2JSON(t, events)
	skipRE := regexp.MustCompile(skip)
	var out2 []suitereport.Skip
	for _, s := range c.Skipped {
		if skipRE.MatchString(s.Name) {
			out2 = append(out2, suitereport.Skip{Name: s.Name, Reason: "excluded (-test.skip " + skip + "): " + noSCTP})
		}
	}
	return out2
}

// runTest2JSON runs a Go test binary under go tool test2json, its events into eventsPath and
// their text into eventsPath's .log sibling. A non-zero exit is returned, not fatal: the
// events say which tests failed.
func runTest2JSON(t *testing.T, eventsPath, bin string, o localcluster.Options, args ...string) error {
	t.Helper()
	// go test puts its own GOROOT/bin first in PATH, so this is the go that runs this test.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool test2json: %v", err)
	}
	targs := append([]string{"tool", "test2json", "-t", "-p", "conformance", bin, "-test.v=test2json"}, args...)
	err = runLogged(t, eventsPath, goBin, []string{"KUBECONFIG=" + o.Kubeconfig()}, targs...)
	if werr := writeTest2JSONText(eventsPath, strings.TrimSuffix(eventsPath, ".json")+".log"); werr != nil {
		t.Error(werr)
	}
	return err
}

// countTest2JSON counts the subtests of TestConformance in a test2json event file.
func countTest2JSON(t *testing.T, path string) suitereport.Counts {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c, err := suitereport.GoTestJSON(f, "TestConformance")
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// writeTest2JSONText writes the output text of a test2json event file, for reading.
func writeTest2JSONText(eventsPath, textPath string) error {
	in, err := os.Open(eventsPath)
	if err != nil {
		return err
	}
	defer in.Close()
	var text strings.Builder
	dec := json.NewDecoder(in)
	for {
		var e struct{ Output string }
		if err := dec.Decode(&e); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			// Not an event (test2json's own error): keep what there is.
			text.WriteString("(" + eventsPath + ": " + err.Error() + ")\n")
			break
		}
		text.WriteString(e.Output)
	}
	return os.WriteFile(textPath, []byte(text.String()), 0o644)
}

// runLogged runs bin with args, its output into logPath; a non-zero exit is returned, not
// fatal: the report says which tests failed. bin runs in a process group of its own, which
// the test's end (or its deadline) kills whole: the Ginkgo CLI's e2e.test processes and
// test2json's test binary are children that would otherwise outlive it.
func runLogged(t *testing.T, logPath, bin string, env []string, args ...string) error {
	t.Helper()
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = filepath.Dir(logPath)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Logf("running %s %s (log: %s)", bin, strings.Join(args, " "), logPath)
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", bin, err)
	}
	return err
}
