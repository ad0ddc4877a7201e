package controller

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/api/v1beta1"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/webhook"
)

// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=podsg-system,resources=leases,verbs=get;create;update

// Options are podsg-controller's flags.
type Options struct {
	Kubeconfig  string // "" for in-cluster or $KUBECONFIG
	ClusterName string
	Region      string
	EC2Endpoint string // "" for AWS; the local VPC's URL otherwise
	VPCID       string
	// LocalVPCEndpoint is the local VPC's API as pods reach it; the pod identity webhook
	// points their SDKs at it (AWS_ENDPOINT_URL_STS, …). Only with EC2Endpoint set.
	LocalVPCEndpoint string
	// IdentityNamespaceSelector is a label selector (kubectl's syntax) of the namespaces the pod
	// identity webhook serves; "" for every namespace but the exempt ones, as EKS.
	IdentityNamespaceSelector string

	Namespace      string // where the lease and the certificate secret live
	WebhookPort    int
	WebhookCertDir string
	// WebhookHost, when set, registers the webhooks by URL at this host (running outside the
	// cluster); otherwise by the Service podsg-webhook-service in Namespace.
	WebhookHost string

	BranchCooldown time.Duration
	// BranchReuse parks a branch ENI after its cool-down for the next pod of its node; false
	// deletes it (AWS's create-per-pod path).
	BranchReuse bool
	// IdleBranchTTL is how long a parked or warm branch beyond its warm target is kept.
	IdleBranchTTL time.Duration
	// WarmBranchesPerNode is the warm target of a policy that sets none.
	WarmBranchesPerNode int
	SweepInterval       time.Duration
	InstanceLimitsFile  string
	// NodeWorkers and PodWorkers are Config's: nodes and pods reconciled at once.
	NodeWorkers, PodWorkers int
	// ControllerUsername is the user the validating webhook lets write the pod annotations;
	// "" to learn podsg-controller's own at start (SelfSubjectReview).
	ControllerUsername string

	// EC2Budget is the account's EC2 request budget and the share left to its other users.
	EC2Budget EC2Budget

	MetricsAddr string
	HealthAddr  string
	// PprofAddr serves net/http/pprof ("" or "0": not at all): profiles of a running
	// controller, as the scale benchmark takes them.
	PprofAddr string
	// PprofContention samples, for /debug/pprof/block and /debug/pprof/mutex, goroutines
	// blocked (about one sample per millisecond blocked) and contended mutexes (one in
	// ContentionMutexFraction): off by default, as every blocking event then pays for a
	// check. Needs PprofAddr.
	PprofContention bool
	LeaderElect     bool
	// MemoryLimit is the Go runtime's soft memory limit: "auto" (a share of the container's
	// memory limit), "none", or a size such as 900Mi (memoryLimit).
	MemoryLimit string
}

// The sampling --pprof-contention sets: the scale benchmarks' (internal/controller's
// startProfiles), coarse enough to leave the process's speed as it was.
const (
	ContentionBlockRate     = int(time.Millisecond)
	ContentionMutexFraction = 10
)

// Run runs podsg-controller until ctx ends.
func Run(ctx context.Context, o Options) error {
	log := logf.FromContext(ctx)
	cfg, err := kubeConfig(o.Kubeconfig)
	if err != nil {
		return err
	}
	if o, err = o.prepare(ctx); err != nil {
		return err
	}
	o.sampleContention(ctx)
	kube, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		return fmt.Errorf("creating client: %w", err)
	}
	identity, err := resolveIdentity(ctx, kube, o.ControllerUsername)
	if err != nil {
		return err
	}
	log.Info("writing pod annotations as", "user", identity, "learnt", o.ControllerUsername == "")
	if err := o.installWebhooks(ctx, kube, identity); err != nil {
		return err
	}
	mgr, err := newManager(cfg, o)
	if err != nil {
		return err
	}
	if err := registerMetrics(crmetrics.Registry); err != nil {
		return err
	}
	ec2Opts, err := o.EC2Budget.Apply(cloudec2.Options{Region: o.Region, Endpoint: o.EC2Endpoint, Registerer: crmetrics.Registry})
	if err != nil {
		return err
	}
	// One client, so one budget per account for every EC2 call of the controller.
	ec2, err := cloudec2.New(ctx, ec2Opts)
	if err != nil {
		return fmt.Errorf("creating EC2 client: %w", err)
	}
	tab, err := limits.Load(o.InstanceLimitsFile)
	if err != nil {
		return err
	}
	if _, err := Setup(ctx, mgr, ec2, Config{
		ClusterName: o.ClusterName, VPCID: o.VPCID, Cooldown: o.BranchCooldown, SweepInterval: o.SweepInterval,
		NoReuse: !o.BranchReuse, IdleTTL: o.IdleBranchTTL, WarmBranchesPerNode: o.WarmBranchesPerNode,
		ControllerUsername: identity, Limits: tab, Webhooks: true, NodeWorkers: o.NodeWorkers, PodWorkers: o.PodWorkers,
		Identity: podidentity.Options{Region: o.Region, LocalVPCEndpoint: o.LocalVPCEndpoint},
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding healthz: %w", err)
	}
	// Ready once the webhook server answers TLS: pods must not be sent to a replica that cannot.
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return fmt.Errorf("adding readyz: %w", err)
	}
	log.Info("starting podsg-controller", "cluster", o.ClusterName, "region", o.Region, "endpoint", o.EC2Endpoint)
	return mgr.Start(ctx)
}

// sampleContention turns on the block and mutex profiles when --pprof-contention asks.
func (o Options) sampleContention(ctx context.Context) {
	if !o.PprofContention {
		return
	}
	goruntime.SetBlockProfileRate(ContentionBlockRate)
	goruntime.SetMutexProfileFraction(ContentionMutexFraction)
	logf.FromContext(ctx).Info("sampling blocked goroutines and contended mutexes", "pprof", o.PprofAddr)
}

// kubeConfig loads the apiserver's configuration from a kubeconfig file, or as
// controller-runtime finds it for "". Either way without client-side rate limiting, as
// controller-runtime's own loader does, relying on the apiserver's priority and fairness:
// client-go's default for a file (5 requests per second) would hold a burst of pods that need
// no EC2 call to a few annotations per second.
func kubeConfig(path string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if path == "" {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	if cfg.QPS == 0 {
		cfg.QPS = -1
	}
	return cfg, nil
}

// prepare validates o, applies its memory limit to the Go runtime, before anything fills the
// heap, and returns o with its defaults.
func (o Options) prepare(ctx context.Context) (Options, error) {
	if err := o.validate(); err != nil {
		return o, err
	}
	if err := applyMemoryLimit(ctx, o.MemoryLimit); err != nil {
		return o, err
	}
	if o.WebhookCertDir == "" {
		o.WebhookCertDir = filepath.Join(os.TempDir(), "podsg-webhook-certs")
	}
	return o, nil
}

// validate refuses a malformed --identity-webhook-namespace-selector, --pprof-contention
// without --pprof-addr, and a local VPC endpoint
// on AWS: pods would send their STS, IAM, EC2 and RDS calls, signed with their role's
// credentials, to that URL instead of AWS.
func (o Options) validate() error {
	// Before anything reaches the apiserver: installWebhooks parses it again.
	if _, err := o.identityNamespaces(); err != nil {
		return err
	}
	if o.PprofContention && (o.PprofAddr == "" || o.PprofAddr == "0") {
		return errors.New("--pprof-contention samples for /debug/pprof/block and /mutex, and --pprof-addr is empty: nothing would serve them")
	}
	if o.LocalVPCEndpoint == "" {
		return nil
	}
	if o.EC2Endpoint == "" {
		return errors.New("--local-vpc-endpoint is for the local VPC only, and --ec2-endpoint is empty (AWS)")
	}
	u, err := url.Parse(podidentity.ServiceEndpointURL(o.LocalVPCEndpoint, "sts"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--local-vpc-endpoint %q: want an http:// or https:// URL with a host", o.LocalVPCEndpoint)
	}
	return nil
}

// installWebhooks writes the webhooks' serving certificate and configurations. Every replica
// writes the same; the writes are idempotent.
func (o Options) installWebhooks(ctx context.Context, kube client.Client, controllerUser string) error {
	identityNamespaces, err := o.identityNamespaces()
	if err != nil {
		return err
	}
	return webhook.Install(ctx, kube, webhook.Endpoint{Namespace: o.Namespace, Host: o.WebhookHost, Port: o.WebhookPort,
		CertDir: o.WebhookCertDir, IdentityNamespaceSelector: identityNamespaces, ControllerUsername: controllerUser})
}

// identityNamespaces parses --identity-webhook-namespace-selector: nil when empty (the
// default, every namespace but the exempt ones).
func (o Options) identityNamespaces() (*metav1.LabelSelector, error) {
	if strings.TrimSpace(o.IdentityNamespaceSelector) == "" {
		return nil, nil
	}
	sel, err := metav1.ParseToLabelSelector(o.IdentityNamespaceSelector)
	if err != nil {
		return nil, fmt.Errorf("--identity-webhook-namespace-selector %q: want a label selector such as podsg.io/pod-identity=enabled: %w",
			o.IdentityNamespaceSelector, err)
	}
	return sel, nil
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(v1beta1.AddToScheme(s))
	// The policy APIs the network policy feedback reads and records events about.
	utilruntime.Must(cnpv1.Install(s))
	utilruntime.Must(calicov3.AddToScheme(s))
	return s
}

// newManager is podsg-controller's manager: its cache, metrics, probes, leader election and
// webhook server.
func newManager(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	// Every pod creation waits on these webhooks: their time is measured in fine buckets, and
	// they are served over HTTP/1.1 (webhook.NewServer says why).
	countHandshakes, err := webhook.CountHandshakes(crmetrics.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering the webhooks' metrics: %w", err)
	}
	webhookServer, err := webhook.Timed(webhook.NewServer(crwebhook.Options{Port: o.WebhookPort, CertDir: o.WebhookCertDir,
		TLSOpts: []func(*tls.Config){countHandshakes}}), crmetrics.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering the webhooks' metrics: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme(),
		Cache:                   CacheOptions(),
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.HealthAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "podsg-controller",
		LeaderElectionNamespace: o.Namespace,
		WebhookServer:           webhookServer,
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	return mgr, nil
}
