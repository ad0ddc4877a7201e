//go:build awsrc

package sidebyside

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podsg/podsg/internal/testenv"
)

// cooldown is the branch ENI cool-down both controllers run with: AWS's shortest (it raises
// anything below 30 s to 30 s).
const cooldown = 30 * time.Second

// contender is a controller under test, run as a subprocess on a world.
type contender interface {
	// name labels its column of the table.
	name() string
	// webhooks are the webhook configurations the control plane must hold before it starts
	// (none when the controller registers its own).
	webhooks(t testing.TB) envtest.WebhookInstallOptions
	// prepare readies the world for it: CRDs, configuration, credentials, certificates.
	prepare(t testing.TB, w *world)
	// start runs one incarnation.
	start(t testing.TB, w *world) *testenv.Process
}

// awsController is github.com/aws/amazon-vpc-resource-controller-k8s, built by
// hack/aws-vpc-rc.sh: the binary, AWS's CRDs and webhook configurations of the same release.
type awsController struct {
	bin, dir string
	// tmp is its TMPDIR: controller-runtime's default certificate directory, which AWS's
	// main.go does not let a flag change, lies under it.
	tmp, kubeconfig string
	// webhookPort is where the apiserver calls its webhooks, relayed to 9443 in the sandbox.
	webhookPort int
}

// awsControllerFromEnv finds the build hack/aws-vpc-rc.sh made (PODSG_AWS_VPC_RC is the path it
// prints). The tests of this package run only when asked for (the awsrc tag), so without it
// they fail rather than skip.
func awsControllerFromEnv(t testing.TB) *awsController {
	t.Helper()
	bin := os.Getenv("PODSG_AWS_VPC_RC")
	if bin == "" {
		t.Fatal("PODSG_AWS_VPC_RC is not set: export PODSG_AWS_VPC_RC=$(hack/aws-vpc-rc.sh | tail -n1), or run make conformance-aws-controller / make bench-compare")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("PODSG_AWS_VPC_RC: %v", err)
	}
	return &awsController{bin: bin, dir: filepath.Dir(bin)}
}

func (a *awsController) name() string { return "AWS vpc-resource-controller v1.8.2" }

// awsWebhookPort is the port AWS's main.go serves its webhooks on; no flag changes it (nor
// its health port, 61779): the sandbox keeps both off the machine's loopback.
const awsWebhookPort = 9443

func (a *awsController) webhooks(t testing.TB) envtest.WebhookInstallOptions {
	t.Helper()
	a.webhookPort = testenv.FreePort(t)
	return envtest.WebhookInstallOptions{Paths: []string{filepath.Join(a.dir, "webhook")},
		LocalServingHost: "127.0.0.1", LocalServingPort: a.webhookPort}
}

func (a *awsController) prepare(t testing.TB, w *world) {
	t.Helper()
	if _, err := envtest.InstallCRDs(w.env.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(a.dir, "crd", "vpcresources.k8s.aws_cninodes.yaml")}}); err != nil {
		t.Fatalf("installing AWS's CNINode CRD: %v", err)
	}
	// kube-system/amazon-vpc-cni is where EKS users set the cool-down.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "amazon-vpc-cni"},
		Data: map[string]string{"branch-eni-cooldown": strconv.Itoa(int(cooldown.Seconds())), "enable-windows-ipam": "false"}}
	if err := w.c.Create(t.Context(), cm); err != nil {
		t.Fatal(err)
	}
	a.tmp = t.TempDir()
	certDir := filepath.Join(a.tmp, "k8s-webhook-server", "serving-certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"tls.crt", "tls.key"} {
		data, err := os.ReadFile(filepath.Join(w.env.Webhooks.LocalServingCertDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certDir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a.kubeconfig = impersonating(t, w.env.Kubeconfig, "eks:vpc-resource-controller")
	w.sb.outOf(t, a.webhookPort, awsWebhookPort)
}

// impersonating writes a kubeconfig that acts as user (in system:masters) through the admin's
// credentials. AWS's controller must run as the user its own annotation webhook trusts with the
// pod-eni annotation, which on EKS is eks:vpc-resource-controller.
func impersonating(t testing.TB, adminKubeconfig, user string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(adminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = user
		ai.ImpersonateGroups = []string{"system:masters", "system:authenticated"}
	}
	p := filepath.Join(t.TempDir(), strings.ReplaceAll(user, ":", "-")+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (a *awsController) start(t testing.TB, w *world) *testenv.Process {
	t.Helper()
	// It finds EC2, and its region and account, the way the AWS SDK lets any program be pointed
	// elsewhere: environment variables.
	return startWithEnv(t, w.sb, []string{"AWS_ENDPOINT_URL_EC2=" + w.vpc.URL, "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + w.vpc.IMDS,
		"TMPDIR=" + a.tmp}, a.bin,
		"--kubeconfig="+a.kubeconfig,
		"--cluster-name="+clusterName,
		"--vpc-id="+w.vpc.vpcID,
		"--metrics-bind-address=0",
		"--introspect-bind-addr=127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)),
	)
}

// startWithEnv runs bin in the sandbox with AWS credentials the local VPC accepts, no AWS
// configuration of the machine's, and env, through env(1); ip netns exec and env exec, so the
// process is bin itself.
func startWithEnv(t testing.TB, sb *sandbox, env []string, bin string, args ...string) *testenv.Process {
	t.Helper()
	all := append([]string{"AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}, env...)
	ip, ipArgs := sb.command(t, "/usr/bin/env", append(append(all, bin), args...)...)
	p, err := testenv.StartProcess(t, ip, ipArgs...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
