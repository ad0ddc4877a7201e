//go:build awsrc

package sidebyside

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podsg/podsg/internal/testenv"
)

// podsgController is this repository's podsg-controller, built from the tree under test.
type podsgController struct {
	bin, certDir string
	// webhookPort is the same inside the sandbox and out: it registers its webhooks by URL.
	webhookPort int
}

func newPodsgController(t testing.TB) *podsgController {
	t.Helper()
	return &podsgController{bin: testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-controller")}
}

func (p *podsgController) name() string { return "podsg-controller" }

// webhooks: podsg-controller registers its own, by URL, when it runs outside the cluster.
func (p *podsgController) webhooks(testing.TB) envtest.WebhookInstallOptions {
	return envtest.WebhookInstallOptions{}
}

func (p *podsgController) prepare(t testing.TB, w *world) {
	t.Helper()
	// Its lease and its webhook certificate live in its namespace.
	if err := w.c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "podsg-system"}}); err != nil {
		t.Fatal(err)
	}
	p.certDir = t.TempDir()
	p.webhookPort = testenv.FreePort(t)
	w.sb.outOf(t, p.webhookPort, p.webhookPort)
}

func (p *podsgController) start(t testing.TB, w *world) *testenv.Process {
	t.Helper()
	return startWithEnv(t, w.sb, []string{"AWS_EC2_METADATA_DISABLED=true"}, p.bin,
		"--kubeconfig="+w.env.Kubeconfig,
		"--cluster-name="+clusterName,
		"--region="+region,
		"--ec2-endpoint="+w.vpc.URL,
		"--vpc-id="+w.vpc.vpcID,
		"--webhook-host=127.0.0.1",
		"--webhook-port="+strconv.Itoa(p.webhookPort),
		"--webhook-cert-dir="+p.certDir,
		"--metrics-addr=0",
		"--health-addr=127.0.0.1:"+strconv.Itoa(testenv.FreePort(t)),
		"--branch-cooldown="+cooldown.String(),
	)
}
