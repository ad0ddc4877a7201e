//go:build netpolconf

package localcluster_test

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/images"
	"github.com/podsg/podsg/internal/localcluster"
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
//	PODSG_NETPOL_E2E_DIR    hack/e2e-bin.sh's Kubernetes directory (e2e.test, agnhost)
//	PODSG_NETPOL_NPAPI_DIR  its network-policy-api directory (conformance.test)
//	PODSG_NETPOL_CONF_OUT   a directory for the suites' logs and reports (default: a temp dir)
//	PODSG_NETPOL_CONF_FOCUS a regexp narrowing the e2e suite further (optional; for debugging)
//	PODSG_NETPOL_CONF_RUN   a -run pattern for network-policy-api's tests under TestConformance (optional)
//	PODSG_NETPOL_CONF_SKIP  "e2e" or "npapi" skips that suite (optional; for debugging)
//
// Build tag netpolconf: the suites take minutes to build and tens of minutes to run, so this
// is not part of make test.

// e2eFocus selects Kubernetes' NetworkPolicy tests: "[sig-network] Netpol" and "[sig-network]
// Netpol [LinuxOnly]" (the data path), "[sig-network] Netpol API" (the API's validation).
const e2eFocus = `\[sig-network\] Netpol`

// e2eSkip names what cannot run here, each with the reason. Without SCTP in the kernel (as on
// this project's machines: no sctp module, socket(…, IPPROTO_SCTP) fails), the SCTP
// connectivity tests cannot make a single SCTP connection, allowed or not: those (the
// "[Feature:SCTPConnectivity]" Describe) are skipped. The tests that only put SCTP in a policy
// and probe TCP still run.
func e2eSkip(sctp bool) []string {
	if sctp {
		return nil
	}
	return []string{`\[Feature:SCTPConnectivity\]`}
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
	e2eFiles := []string{"e2e.test", "agnhost"}
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
			c, took := runE2E(t, o, e2eDir, out, e2eSkip(sctp))
			summary = append(summary, fmt.Sprintf("Kubernetes %s e2e, %s: %s in %v", kubeVersion(e2eDir), e2eFocus, c, took))
			c.check(t)
		})
	}
	if skip != "npapi" {
		t.Run("network-policy-api conformance", func(t *testing.T) {
			c, took := runNPAPI(t, o, npapiDir, out, npapiSkip(sctp))
			summary = append(summary, fmt.Sprintf("network-policy-api %s conformance (%s): %s in %v", npapiVersion(npapiDir), npapiFeatures, c, took))
			c.check(t)
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

// counts are a suite's results: each test's name by outcome.
type counts struct {
	passed, failed, skipped []string
}

func (c counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", len(c.passed), len(c.failed), len(c.skipped))
}

// check fails t for every failed test, and if nothing passed.
func (c counts) check(t *testing.T) {
	t.Helper()
	for _, f := range c.failed {
		t.Errorf("failed: %s", f)
	}
	if len(c.passed) == 0 {
		t.Error("no test passed")
	}
}

// runE2E runs e2e.test's NetworkPolicy tests, one at a time, and counts their JUnit report.
func runE2E(t *testing.T, o localcluster.Options, dir, out string, skip []string) (counts, time.Duration) {
	t.Helper()
	report := filepath.Join(out, "e2e")
	if err := os.MkdirAll(report, 0o755); err != nil {
		t.Fatal(err)
	}
	focus := e2eFocus
	if f := os.Getenv("PODSG_NETPOL_CONF_FOCUS"); f != "" {
		focus = e2eFocus + ".*" + f
	}
	args := []string{
		"--kubeconfig=" + o.Kubeconfig(), "--provider=skeleton", "--report-dir=" + report,
		"--ginkgo.focus=" + focus, "--ginkgo.no-color", "--ginkgo.timeout=100m",
		// The nodes' logs are in the cluster's state dir, which the test removes; events of a
		// failed test's namespaces are dumped into the log.
		"--dump-logs-on-failure=true",
	}
	for _, s := range skip {
		args = append(args, "--ginkgo.skip="+s)
	}
	start := time.Now()
	err := runLogged(t, filepath.Join(out, "e2e.log"), filepath.Join(dir, "e2e.test"), nil, args...)
	took := time.Since(start).Round(time.Second)
	c, perr := junitCounts(filepath.Join(report, "junit_01.xml"), "[sig-network] Netpol")
	if perr != nil {
		t.Fatalf("e2e.test (%v): %v; its log: %s", err, perr, filepath.Join(out, "e2e.log"))
	}
	if err != nil && len(c.failed) == 0 {
		t.Errorf("e2e.test: %v with no failed test in its report; its log: %s", err, filepath.Join(out, "e2e.log"))
	}
	return c, took
}

// runNPAPI runs network-policy-api's conformance tests and counts the top-level ones
// (TestConformance/<ShortName>) from the verbose test output.
func runNPAPI(t *testing.T, o localcluster.Options, dir, out, skip string) (counts, time.Duration) {
	t.Helper()
	args := []string{"-test.v", "-test.timeout=60m", "-test.count=1", "-supported-features=" + npapiFeatures,
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
	if skip != "" {
		args = append(args, "-test.skip=^TestConformance$/"+skip)
	}
	log := filepath.Join(out, "npapi.log")
	start := time.Now()
	err := runLogged(t, log, filepath.Join(dir, "conformance.test"), []string{"KUBECONFIG=" + o.Kubeconfig()}, args...)
	took := time.Since(start).Round(time.Second)
	c, perr := goTestCounts(log, "TestConformance")
	if perr != nil {
		t.Fatalf("conformance.test (%v): %v; its log: %s", err, perr, log)
	}
	if err != nil && len(c.failed) == 0 {
		t.Errorf("conformance.test: %v with no failed test in its output; its log: %s", err, log)
	}
	return c, took
}

// runLogged runs bin with args, its output into logPath; a non-zero exit is returned, not
// fatal: the report says which tests failed.
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
	t.Logf("running %s %s (log: %s)", bin, strings.Join(args, " "), logPath)
	err = cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", bin, err)
	}
	return err
}

// junitCounts counts the test cases of a Ginkgo JUnit report whose names contain match.
func junitCounts(path, match string) (counts, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return counts{}, err
	}
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name   string `xml:"name,attr"`
				Status string `xml:"status,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &suites); err != nil {
		return counts{}, fmt.Errorf("parsing %s: %w", path, err)
	}
	var c counts
	for _, s := range suites.Suites {
		for _, tc := range s.Cases {
			if !strings.Contains(tc.Name, match) {
				continue
			}
			switch tc.Status {
			case "passed":
				c.passed = append(c.passed, tc.Name)
			case "skipped", "pending":
				c.skipped = append(c.skipped, tc.Name)
			default: // failed, panicked, interrupted, timedout
				c.failed = append(c.failed, tc.Name+" ("+tc.Status+")")
			}
		}
	}
	return c, nil
}

// goTestCounts counts the subtests directly under top in `go test -v` output.
func goTestCounts(path, top string) (counts, error) {
	f, err := os.Open(path)
	if err != nil {
		return counts{}, err
	}
	defer f.Close()
	line := regexp.MustCompile(`^\s*--- (PASS|FAIL|SKIP): ` + regexp.QuoteMeta(top) + `/([^/\s]+) `)
	var c counts
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		m := line.FindStringSubmatch(s.Text())
		if m == nil {
			continue
		}
		switch m[1] {
		case "PASS":
			c.passed = append(c.passed, m[2])
		case "FAIL":
			c.failed = append(c.failed, m[2])
		case "SKIP":
			c.skipped = append(c.skipped, m[2])
		}
	}
	return c, s.Err()
}
