package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/podsg/podsg/internal/testenv"
)

// TestMain removes the binaries built for the package's tests.
func TestMain(m *testing.M) {
	testenv.Main(m)
}

// TestAWSCLISession runs testdata/awscli-session.sh — awscli as a user types it — against the
// real podsg-vpc binary, which verifies the signature of every request (--credentials).
func TestAWSCLISession(t *testing.T) {
	testenv.Require(t, testenv.AWSCLI)
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal(err)
	}
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("AKIDCONFORMANCE s3cr3t-conformance\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "--credentials", creds)
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.ListeningURL(t, p, "podsg-vpc listening on ")

	cmd := exec.CommandContext(t.Context(), "bash", "testdata/awscli-session.sh")
	cmd.Env = append(os.Environ(), "ENDPOINT="+url, "PATH="+filepath.Dir(aws)+":"+os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID=AKIDCONFORMANCE", "AWS_SECRET_ACCESS_KEY=s3cr3t-conformance")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("awscli session failed: %v\nserver log:\n%s", err, p.LogTail())
	}
}
