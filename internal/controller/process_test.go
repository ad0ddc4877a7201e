package controller_test

import (
	"strconv"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
)

// prepareForProcess readies a noManager world for the podsg-controller binary: the process
// registers its own webhook configurations, by URL, so the ones envtest installed for an
// in-process manager go (they would point at a port nothing serves and, failing closed, reject
// every pod); its namespace exists; it finds AWS credentials the way it would on AWS (the local
// VPC checks none).
func prepareForProcess(t testing.TB, w *world) {
	t.Helper()
	for _, obj := range []client.Object{
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "mutating-webhook-configuration"}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "validating-webhook-configuration"}},
	} {
		if err := client.IgnoreNotFound(w.c.Delete(t.Context(), obj)); err != nil {
			t.Fatal(err)
		}
	}
	controllertest.Namespace(t, w.c, "podsg-system")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// processArgs runs podsg-controller outside the cluster, as a user trying it would: with the
// admin kubeconfig, on the EC2 API at endpoint, with a short cool-down.
func processArgs(t testing.TB, w *world, endpoint string) []string {
	t.Helper()
	return []string{
		"--kubeconfig=" + w.env.Kubeconfig,
		"--cluster-name=" + cluster,
		"--region=us-west-2",
		"--ec2-endpoint=" + endpoint,
		"--vpc-id=" + w.vpcID,
		"--webhook-host=127.0.0.1",
		"--webhook-port=" + strconv.Itoa(testenv.FreePort(t)),
		"--webhook-cert-dir=" + t.TempDir(),
		"--metrics-addr=0",
		"--health-addr=127.0.0.1:" + strconv.Itoa(testenv.FreePort(t)),
		"--branch-cooldown=2s",
	}
}
