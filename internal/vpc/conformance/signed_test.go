package conformance

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/podsg/podsg/internal/testenv"
)

// The long-term key the awscli tests sign with; podsg-vpc verifies every signature against it
// (--credentials), so a request that awscli signs wrongly fails instead of passing unchecked.
const (
	keyID  = "AKIDCONFORMANCE"
	secret = "s3cr3t-conformance"
)

// writeCredentials writes podsg-vpc's --credentials file with the tests' key into dir.
func writeCredentials(t *testing.T, dir string) string {
	t.Helper()
	creds := filepath.Join(dir, "credentials")
	if err := os.WriteFile(creds, []byte(keyID+" "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return creds
}

// startSignedVPC starts the real podsg-vpc binary (API only) that accepts only the tests' key,
// and returns the awscli to drive it with, its endpoint and the process (for its log).
func startSignedVPC(t *testing.T) (aws, url string, p *testenv.Process) {
	t.Helper()
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Fatal(err)
	}
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-vpc")
	p, err = testenv.StartProcess(t, bin, "serve", "--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "--credentials", writeCredentials(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return aws, testenv.ListeningURL(t, p, "podsg-vpc listening on "), p
}
