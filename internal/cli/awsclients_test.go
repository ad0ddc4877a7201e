package cli

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
)

// TestLocalVPCClientsNeverAskInstanceMetadata: with no credentials anywhere, the SDK's default
// chain ends at instance metadata. The CLI's clients of the local VPC must not go there (on this
// host it is not the local VPC's); a client that may (the controller's, inside an instance)
// does, which shows the fake metadata service would see it.
func TestLocalVPCClientsNeverAskInstanceMetadata(t *testing.T) {
	var asked atomic.Int32
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		http.Error(w, "no", http.StatusNotFound)
	}))
	t.Cleanup(imds.Close)
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.URL, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "",
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ROLE_ARN": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_EC2_METADATA_DISABLED": "", "AWS_CONFIG_FILE": filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
	} {
		t.Setenv(k, v)
	}
	const endpoint = "http://127.0.0.1:1" // never called: building the clients is the point
	if _, err := ec2Client(t.Context(), "us-west-2", endpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := localVPCConfig(t.Context(), "us-west-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := rdsDBs(t.Context(), "us-west-2", endpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := rdsAuthorizer(t.Context(), "us-west-2", endpoint); err != nil {
		t.Fatal(err)
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("the CLI's local VPC clients asked instance metadata %d times", n)
	}
	if _, err := cloudec2.New(t.Context(), cloudec2.Options{Region: "us-west-2", Endpoint: endpoint}); err != nil {
		t.Fatal(err)
	}
	if asked.Load() == 0 {
		t.Fatal("a client allowed to ask instance metadata did not: the fake metadata service is not where the SDK looks")
	}
}
