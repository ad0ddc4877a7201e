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
	aws, url, p := startSignedVPC(t)

	cmd := exec.CommandContext(t.Context(), "bash", "testdata/awscli-session.sh")
	cmd.Env = append(os.Environ(), "ENDPOINT="+url, "PATH="+filepath.Dir(aws)+":"+os.Getenv("PATH"),
		"AWS_ACCESS_KEY_ID="+keyID, "AWS_SECRET_ACCESS_KEY="+secret)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("awscli session failed: %v\nserver log:\n%s", err, p.LogTail())
	}
}
