package conformance

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/podsg/podsg/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// podsgVPCBinary builds cmd/podsg-vpc once per test binary.
func podsgVPCBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "podsg-vpc-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "podsg-vpc")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/podsg/podsg/cmd/podsg-vpc").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("go build: %s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building podsg-vpc: %v", buildErr)
	}
	return binPath
}

// TestMain removes the binary built for the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestAWSCLISession runs testdata/awscli-session.sh — awscli as a user types it — against the
// real podsg-vpc binary.
func TestAWSCLISession(t *testing.T) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		if testenv.Strict() {
			t.Fatalf("awscli not found on PATH: %v", err)
		}
		t.Skip("awscli not found on PATH")
	}
	bin := podsgVPCBinary(t)
	p, err := testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	url := listeningURL(t, p)

	cmd := exec.CommandContext(t.Context(), "bash", "testdata/awscli-session.sh")
	cmd.Env = append(os.Environ(), "ENDPOINT="+url, "PATH="+filepath.Dir(aws)+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("awscli session failed: %v\nserver log:\n%s", err, p.LogTail())
	}
}

// listeningURL waits for podsg-vpc's "listening on" line in its log.
func listeningURL(t *testing.T, p *testenv.Process) string {
	t.Helper()
	var url string
	err := testenv.Eventually(t.Context(), func() (bool, error) {
		s := bufio.NewScanner(strings.NewReader(p.Log()))
		for s.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(s.Text()), "podsg-vpc listening on "); ok {
				url = u
				return true, nil
			}
		}
		return false, p.ExitErr()
	})
	if err != nil {
		t.Fatalf("waiting for podsg-vpc to listen: %v\n%s", err, p.LogTail())
	}
	return url
}
