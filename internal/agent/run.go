package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podsg/podsg/api/v1beta1"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/cloud/instancetypes"
	"github.com/podsg/podsg/internal/cni"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/policyenforce"
)

// Options configure the node agent (flags of podsg-agent).
type Options struct {
	Kubeconfig string // "" for in-cluster
	NodeName   string
	// EC2Endpoint is "" for AWS, or the local VPC's URL; the region comes from IMDS.
	EC2Endpoint string
	// IMDSEndpoint overrides the metadata endpoint (tests); "" is the standard one.
	IMDSEndpoint string

	EnablePodENI bool
	Alloc        AllocConfig
	// Targets size the pool of secondary IPs for regular pods (WARM_IP_TARGET & co.).
	Targets Targets
	// IPCooldown keeps a released pod IP from the next pod for this long.
	IPCooldown time.Duration

	StateDir string // per-container records, shared with the plugin
	Socket   string
	// HealthAddr serves /healthz, /readyz and /metrics over HTTP; "" serves none.
	HealthAddr string

	// NetworkPolicy enforces NetworkPolicy and ClusterNetworkPolicy on the node's pods
	// (internal/policyenforce); LogDenied also logs each dropped packet (nft log).
	NetworkPolicy, LogDenied bool

	// CNI installation: the plugin binary to copy (none when ""), where to, and its config.
	CNIBinSource, CNIBinDir, CNIConfDir string
	CNI                                 cni.NetConf
}

// Validate checks the options, naming the flag at fault.
func (o *Options) Validate() error {
	errs := o.Alloc.validate()
	if o.NodeName == "" {
		errs = append(errs, errors.New("--node-name (or $NODE_NAME) is required"))
	}
	if err := o.Targets.validate(); err != nil {
		errs = append(errs, err)
	}
	if o.IPCooldown < 0 {
		errs = append(errs, fmt.Errorf("--ip-cooldown %v must not be negative", o.IPCooldown))
	}
	if _, err := cni.ParseConf(mustJSON(o.CNI)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c AllocConfig) validate() []error {
	var errs []error
	if c.Mode != podstate.ModeStrict && c.Mode != podstate.ModeStandard {
		errs = append(errs, fmt.Errorf("--pod-sg-enforcing-mode %q: want %s or %s", c.Mode, podstate.ModeStrict, podstate.ModeStandard))
	}
	if n := len(c.VethPrefix); n == 0 || n > 4 || c.VethPrefix == "vlan" || c.VethPrefix == "eth" || c.VethPrefix == "lo" {
		errs = append(errs, fmt.Errorf("--veth-prefix %q: 1 to 4 characters, not vlan, eth or lo (used by other interfaces)", c.VethPrefix))
	}
	// VLAN ids stay at or below the largest branch limit (107 today; AWS keeps 120 slots), so
	// the pod tables are base+1..base+120; they must miss the secondary ENIs' tables (device
	// index + 1, at most the largest ENI limit) and the kernel's 253-255.
	if b := c.RouteTableBase; b < maxENITable || (b+maxVLAN >= 253 && b <= 255) {
		errs = append(errs, fmt.Errorf("--route-table-base %d: tables base+1..base+%d must miss the ENI tables 2..%d and the reserved 253-255", b, maxVLAN, maxENITable))
	}
	if c.AnnotationWait <= 0 {
		errs = append(errs, fmt.Errorf("--annotation-wait %v must be positive", c.AnnotationWait))
	}
	return errs
}

// maxENITable is the highest route table a secondary ENI can get: device index + 1 on the
// type with the most ENIs.
var maxENITable = func() int {
	n := 0
	for _, t := range instancetypes.All() {
		n = max(n, t.MaxENIs)
	}
	return n
}()

const maxVLAN = 120

func mustJSON(v any) []byte {
	data, _ := json.Marshal(v)
	return data
}

// Run runs the node agent until ctx ends. The health endpoint comes up first, so that
// liveness holds while the agent waits for IMDS, EC2 or the API server; readiness follows
// once the CNI socket is served.
func Run(ctx context.Context, o Options) error {
	if err := o.Validate(); err != nil {
		return fmt.Errorf("invalid options: %w", err)
	}
	reg := prometheus.NewRegistry()
	var serving atomic.Bool
	ready := func() error {
		if !serving.Load() {
			return errors.New("not serving the CNI plugin yet: starting (instance metadata, EC2, the pod IP pool)")
		}
		return nil
	}
	g, ctx := errgroup.WithContext(ctx)
	if o.HealthAddr != "" {
		g.Go(func() error { return serveHealth(ctx, o.HealthAddr, reg, ready) })
	}
	g.Go(func() error {
		n, err := start(ctx, o, reg)
		if err != nil {
			return err
		}
		g.Go(func() error { return keepWarm(ctx, n.alloc.pool, n.fillRequests) })
		if n.enforcer != nil {
			g.Go(func() error { return n.enforcer.Run(ctx) })
		}
		if o.EnablePodENI {
			g.Go(func() error {
				if err := requestTrunk(ctx, n.kube, o.NodeName); err != nil {
					return err
				}
				return n.alloc.trunk.Run(ctx)
			})
		}
		return serve(ctx, o.Socket, n.alloc, n.metrics, func() { serving.Store(true) })
	})
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// node is what start builds: the allocator behind the CNI socket and what feeds it.
type node struct {
	kube         kubernetes.Interface
	alloc        *allocator
	fillRequests chan struct{}
	metrics      *metrics
	enforcer     *policyenforce.Enforcer // nil without --network-policy
}

// start learns the instance, loads the pod IP pool from EC2 and the node's records, applies
// the node settings, starts watching the node's pods and installs the CNI plugin.
func start(ctx context.Context, o Options, reg prometheus.Registerer) (*node, error) {
	log := logr.FromContextOrDiscard(ctx)
	inst, err := Discover(ctx, imds.New(imds.Options{Endpoint: o.IMDSEndpoint}))
	if err != nil {
		return nil, err
	}
	log.Info("instance", "id", inst.ID, "type", inst.Type, "primaryENI", inst.Primary.ID)
	typ, ok := instancetypes.Lookup(inst.Type)
	if !ok {
		return nil, fmt.Errorf("unknown instance type %s: no ENI limits for it", inst.Type)
	}
	ec2, err := cloudec2.New(ctx, cloudec2.Options{Region: inst.Region, Endpoint: o.EC2Endpoint, Registerer: reg})
	if err != nil {
		return nil, err
	}
	kube, cfg, err := kubeClient(o.Kubeconfig)
	if err != nil {
		return nil, err
	}
	store, err := podstate.NewStore(o.StateDir)
	if err != nil {
		return nil, err
	}
	pool := NewPool(ec2, netlinkENIs{}, PoolConfig{InstanceID: inst.ID, NodeName: o.NodeName, MaxENIs: typ.MaxENIs,
		// Only a type that can trunk needs the slot: AWS's VPC CNI keeps it on every type and
		// so wastes an ENI of pod IPs on instances that will never get a trunk.
		ReserveTrunkSlot: o.EnablePodENI && typ.Trunking, IPsPerENI: typ.IPv4PerENI - 1, Targets: o.Targets, Cooldown: o.IPCooldown})
	logTargets(log, o.Targets)
	enforcer, err := startEnforcer(ctx, o, kube, cfg, reg)
	if err != nil {
		return nil, err
	}
	// The watch comes first: syncPool holds the IPs of pods whose record is unusable, and
	// the watch's events release them.
	pods, err := newPodWatch(ctx, kube, o.NodeName, podGone(ctx, pool, enforcer))
	if err != nil {
		return nil, err
	}
	log.Info("watching the node's pods", "node", o.NodeName)
	if err := syncPool(ctx, pool, store, pods); err != nil {
		return nil, err
	}
	st := pool.Stats()
	log.Info("pod IP pool ready", "enis", st.ENIs, "free", st.Free, "used", st.Used)
	if err := configureNode(o.Alloc.Mode); err != nil {
		return nil, err
	}
	if err := firstEnforcement(ctx, enforcer, store, pods); err != nil {
		return nil, err
	}
	n := &node{kube: kube, fillRequests: make(chan struct{}, 1), metrics: newMetrics(reg, pool), enforcer: enforcer}
	n.alloc = &allocator{cfg: o.Alloc, store: store, pods: pods, pool: pool, trunk: newTrunkFinder(ec2, inst.ID, 2*time.Second),
		fill: func() {
			select {
			case n.fillRequests <- struct{}{}:
			default:
			}
		}}
	n.alloc.cfg.EnablePodENI = o.EnablePodENI
	if enforcer != nil { // a nil *Enforcer in the interface would not be nil
		n.alloc.enforce = enforcer
	}
	if err := installCNI(o.CNIBinSource, o.CNIBinDir, o.CNIConfDir, o.CNI); err != nil {
		return nil, err
	}
	return n, nil
}

// podGone is what the agent does when a pod of its node is deleted or turns terminal: release
// the IP held for it, and stop enforcing policy for it.
func podGone(ctx context.Context, pool *Pool, enforcer *policyenforce.Enforcer) func(*corev1.Pod) {
	return func(pod *corev1.Pod) {
		releaseClaim(ctx, pool, pod)
		if enforcer != nil {
			enforcer.Forget(pod.Namespace, pod.Name)
		}
	}
}

// syncPool marks the IPs the node's records hold as used. If any record cannot be read, the
// IPs the node's pods report and no readable record holds are held too (see claim.go): the
// unreadable record's pod may still be running with one of them.
func syncPool(ctx context.Context, pool *Pool, store *podstate.Store, pods nodePods) error {
	log := logr.FromContextOrDiscard(ctx)
	recs, errs := store.List()
	for _, err := range errs {
		log.Error(err, "unreadable pod network record")
	}
	recorded := map[netip.Addr]string{}
	for _, r := range recs {
		if r.Kind == podstate.KindRegular {
			recorded[r.IP] = r.Key()
		}
	}
	inUse := maps.Clone(recorded)
	var claims map[netip.Addr]string
	if len(errs) > 0 {
		list, err := pods.List()
		if err != nil {
			return fmt.Errorf("listing the node's pods to hold the IPs of unreadable records: %w", err)
		}
		claims = unrecordedPodIPs(list, recorded)
		maps.Copy(inUse, claims)
		log.Info("holding the IPs of the node's pods that no readable record holds", "ips", len(claims))
	}
	if err := pool.Sync(ctx, inUse); err != nil {
		return err
	}
	if err := releaseGoneClaims(ctx, pool, pods, claims, recorded); err != nil {
		return err
	}
	if err := pool.Fill(ctx); err != nil {
		// Pods retry and keepWarm tries again: EC2 throttling must not stop the agent.
		log.Error(err, "filling the pod IP pool")
	}
	return nil
}

// nodePods lists the pods of the node.
type nodePods interface {
	List() ([]*corev1.Pod, error)
}

// releaseGoneClaims releases the claims of pods that went before Sync held their IPs: their
// pod watch event came too early to release them.
func releaseGoneClaims(ctx context.Context, pool *Pool, pods nodePods, claims, recorded map[netip.Addr]string) error {
	if len(claims) == 0 {
		return nil
	}
	list, err := pods.List()
	if err != nil {
		return fmt.Errorf("listing the node's pods: %w", err)
	}
	still := unrecordedPodIPs(list, recorded)
	for ip, key := range claims {
		if still[ip] != key {
			pool.Release(ip) // nothing is allocated before syncPool returns
			logr.FromContextOrDiscard(ctx).Info("released an IP held for a pod that went during the sync", "ip", ip)
		}
	}
	return nil
}

// keepWarm refills the pool when asked, and every 10 s brings it to its targets (refills
// what an earlier Fill could not, trims what is above; Trim paces itself), logging failures:
// EC2 throttling or quota must not stop the agent, pods retry.
func keepWarm(ctx context.Context, pool *Pool, fill <-chan struct{}) error {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-fill:
			err = pool.Fill(ctx)
		case <-t.C:
			err = pool.Reconcile(ctx)
		}
		if err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "keeping the pod IP pool at its targets")
		}
	}
}

// logTargets says which targets rule, and warns of MINIMUM_IP_TARGET alone, which caps the
// node's pod IPs (as in AWS's VPC CNI).
func logTargets(log logr.Logger, t Targets) {
	switch {
	case t.ipTargets() && t.WarmIPs == 0:
		log.Info("MINIMUM_IP_TARGET without WARM_IP_TARGET: the node gets at most that many pod IPs; set WARM_IP_TARGET above 0 to grow beyond it",
			"minimumIPTarget", t.MinimumIPs)
	case t.ipTargets():
		log.Info("pod IP pool: IP targets (WARM_ENI_TARGET is ignored)", "warmIPTarget", t.WarmIPs, "minimumIPTarget", t.MinimumIPs)
	default:
		log.Info("pod IP pool: ENI target", "warmENITarget", t.WarmENIs)
	}
}

// requestTrunk labels the node has-trunk-attached=false unless the controller already set it
// to true: podsg-controller attaches a trunk to nodes carrying the label. The agent may start
// before the kubelet has registered the Node, so it waits for it.
func requestTrunk(ctx context.Context, kube kubernetes.Interface, node string) error {
	var n *corev1.Node
	err := wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		n, err = kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			logr.FromContextOrDiscard(ctx).V(1).Info("waiting for the kubelet to register the node", "node", node)
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return fmt.Errorf("getting node %s: %w", node, err)
	}
	if n.Labels[v1beta1.LabelHasTrunkAttached] == "true" {
		return nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{v1beta1.LabelHasTrunkAttached: "false"}}})
	if _, err := kube.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("labelling node %s to ask for a trunk ENI: %w", node, err)
	}
	return nil
}

func kubeClient(kubeconfig string) (kubernetes.Interface, *rest.Config, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig == "" {
		cfg, err = rest.InClusterConfig()
	} else {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loading the kubeconfig: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	return kube, cfg, err
}
