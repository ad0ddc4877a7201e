package testenv

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/config"
	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// Options chooses what runs beside etcd and kube-apiserver.
type Options struct {
	// Scheduler runs the real kube-scheduler, so pods bind to nodes by their resources.
	Scheduler bool
	// ControllerManager runs the real kube-controller-manager (ServiceAccounts, ReplicaSets,
	// node lifecycle: it removes the not-ready taint once a node reports Ready).
	ControllerManager bool
	// Webhooks are registered with the apiserver; the test serves them on
	// Env.Webhooks.LocalServingHost/Port with the certificates in LocalServingCertDir.
	Webhooks envtest.WebhookInstallOptions
	// OmitCRDs are names of podsg's CRDs (as clusternetworkpolicies.policy.networking.k8s.io)
	// not to install at the start, for a test of an API installed later (Env.InstallCRDs).
	OmitCRDs []string
}

// Env is a running control plane. Everything it started is stopped by t.Cleanup, also when the
// test fails or panics.
type Env struct {
	// Config authenticates as a cluster admin (system:masters).
	Config *rest.Config
	// Client uses Scheme, which knows the built-in types and ours.
	Client client.Client
	Scheme *runtime.Scheme
	// Kubeconfig is a file for kubectl and subprocesses, admin credentials.
	Kubeconfig string
	// BinDir holds kubectl and the other binaries of this control plane.
	BinDir string
	// Webhooks is the installed webhook configuration (serving host, port, cert dir).
	Webhooks *envtest.WebhookInstallOptions
	// CertDir holds the apiserver's certificates and service-account signing key.
	CertDir string

	dir string
}

// NewScheme returns a scheme with the built-in types, podsg's API and the policy APIs whose
// CRDs podsg installs (ClusterNetworkPolicy, Calico's).
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1beta1.AddToScheme, cnpv1.Install, calicov3.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // static registration cannot fail at run time
		}
	}
	return s
}

// CRDs parses the committed CRD manifests, the ones `make generate` writes into config/.
func CRDs() ([]*apiextensionsv1.CustomResourceDefinition, error) {
	entries, err := fs.ReadDir(config.CRDs, config.CRDDir)
	if err != nil {
		return nil, fmt.Errorf("reading embedded CRDs: %w", err)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, e := range entries {
		data, err := fs.ReadFile(config.CRDs, path.Join(config.CRDDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", e.Name(), err)
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(data, crd); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", e.Name(), err)
		}
		crds = append(crds, crd)
	}
	return crds, nil
}

// Start runs etcd and kube-apiserver with podsg's CRDs (and what opts asks for) and waits until
// they serve. It skips or fails the test when the binaries are missing (see KubeBinDir).
func Start(t testing.TB, opts Options) *Env {
	t.Helper()
	binDir := KubeBinDir(t)
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	crds = slices.DeleteFunc(crds, func(c *apiextensionsv1.CustomResourceDefinition) bool { return slices.Contains(opts.OmitCRDs, c.Name) })
	scheme := NewScheme()
	te := &envtest.Environment{
		BinaryAssetsDirectory: binDir,
		Scheme:                scheme,
		CRDInstallOptions:     envtest.CRDInstallOptions{CRDs: crds, Scheme: scheme},
		WebhookInstallOptions: opts.Webhooks,
	}
	// The apiserver is its own service-account issuer (https://127.0.0.1:PORT/, envtest's), and
	// its discovery document names the keys at its external host, by default the machine's
	// outward address, where it does not listen: its loopback address instead, so that an OIDC
	// client (the local STS) can verify the tokens it issues, as the local cluster's
	// --service-account-jwks-uri lets it.
	te.ControlPlane.GetAPIServer().Configure().Set("external-hostname", "127.0.0.1")
	// envtest says only "timeout waiting for process kube-apiserver to start" when the control
	// plane fails to come up (seen on 2 cores at load > 10): keep the end of what etcd and
	// kube-apiserver printed, to say why.
	apiOut, etcdOut := &tailWriter{max: 16 << 10}, &tailWriter{max: 8 << 10}
	te.ControlPlane.GetAPIServer().Out, te.ControlPlane.GetAPIServer().Err = apiOut, apiOut
	te.ControlPlane.Etcd = &envtest.Etcd{Out: etcdOut, Err: etcdOut}
	cfg, err := te.Start()
	if err != nil {
		t.Fatalf("starting etcd and kube-apiserver from %s: %v\nkube-apiserver's last output:\n%s\netcd's last output:\n%s",
			binDir, err, apiOut, etcdOut)
	}
	// Registered right after a successful start so that a failure below still stops the plane.
	t.Cleanup(func() {
		if err := te.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})

	e := &Env{Config: cfg, Scheme: scheme, BinDir: binDir, Webhooks: &te.WebhookInstallOptions,
		CertDir: te.ControlPlane.APIServer.CertDir, dir: t.TempDir()}
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		t.Fatalf("creating a client: %v", err)
	}
	if e.Kubeconfig, err = e.writeAdminKubeconfig(te); err != nil {
		t.Fatal(err)
	}
	if opts.Scheduler {
		e.startScheduler(t)
	}
	if opts.ControllerManager {
		e.startControllerManager(t)
	}
	return e
}

// InstallCRDs installs the named CRDs of podsg's (those Options.OmitCRDs left out) and waits
// until the API server serves them.
func (e *Env) InstallCRDs(t testing.TB, names ...string) {
	t.Helper()
	crds, err := CRDs()
	if err != nil {
		t.Fatal(err)
	}
	crds = slices.DeleteFunc(crds, func(c *apiextensionsv1.CustomResourceDefinition) bool { return !slices.Contains(names, c.Name) })
	if len(crds) != len(names) {
		t.Fatalf("installing CRDs %v: podsg has %d of them", names, len(crds))
	}
	if _, err := envtest.InstallCRDs(e.Config, envtest.CRDInstallOptions{CRDs: crds, Scheme: e.Scheme}); err != nil {
		t.Fatalf("installing CRDs %v: %v", names, err)
	}
}

func (e *Env) writeAdminKubeconfig(te *envtest.Environment) (string, error) {
	user, err := te.ControlPlane.AddUser(envtest.User{Name: "podsg-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return "", fmt.Errorf("adding the admin user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return "", fmt.Errorf("rendering the admin kubeconfig: %w", err)
	}
	p := filepath.Join(e.dir, "admin.kubeconfig")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return p, nil
}

// tailWriter keeps the last max bytes written to it: a process's output is kept for the
// moment it fails without growing for as long as it runs.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	return len(p), nil
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.buf)
}
