package localcluster

import (
	"slices"
	"strings"
	"testing"
)

// TestDaemonEnvDropsAWSVariables: credentials and settings for real AWS in the user's shell
// never reach the local VPC's clients.
func TestDaemonEnvDropsAWSVariables(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAREAL")
	t.Setenv("AWS_PROFILE", "prod")
	t.Setenv("PODSG_TEST_KEPT", "1")
	env := daemonEnv("AWS_EC2_METADATA_DISABLED=true")
	for _, kv := range env {
		if strings.HasPrefix(kv, "AWS_") && kv != "AWS_EC2_METADATA_DISABLED=true" {
			t.Errorf("daemon environment has %s", kv)
		}
	}
	for _, want := range []string{"PODSG_TEST_KEPT=1", "AWS_EC2_METADATA_DISABLED=true"} {
		if !slices.Contains(env, want) {
			t.Errorf("daemon environment lacks %s", want)
		}
	}
}
