package controller_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/cloud/fake"
	"github.com/podsg/podsg/internal/controller"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/controller/limits"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

const (
	cluster  = "test-cluster"
	vpcID    = "vpc-0123456789abcdef0"
	subnetID = "subnet-0123456789abcdef0"
	zone     = "us-west-2a"
)

// backend is the EC2 the controller talks to.
type backend string

const (
	// backendFake is internal/cloud/fake, in memory, with its own fault injection.
	backendFake backend = "fake"
	// backendVPC is the local VPC API (internal/vpc/vpctest) behind the real EC2 client.
	backendVPC backend = "vpc"
)

var backends = []backend{backendFake, backendVPC}

// options shape a world; the zero value is the fake backend with m5.large nodes.
type options struct {
	backend backend
	// branchLimit is the limits table entry for instanceType (and the fake's MaxBranches).
	branchLimit  int
	instanceType string // default m5.large
	// profile configures the local VPC's throttling and faults (backendVPC only).
	profile server.Profile
	// realClock drives the controller with the wall clock instead of a fake one tests step.
	realClock bool
	// cooldown and releaseInterval override the controller's (0: 60s and 1s).
	cooldown, releaseInterval time.Duration
	// noManager: the test starts (and kills) managers itself with w.startManager.
	noManager bool
	// productionClient gives the controller the EC2 client with podsg-controller's default
	// client-side budget (backendVPC: DefaultEC2Budget), not the wide one tests use.
	productionClient bool
	// noReuse runs the controller with --branch-reuse=false.
	noReuse bool
}

// world is a control plane with the real scheduler, podsg-controller on a manager, and an
// EC2 behind it: the fake, or the local VPC API through the real client.
type world struct {
	env   *testenv.Env
	c     client.Client
	opts  options
	cfg   controller.Config
	clock *clocktesting.FakeClock // nil with realClock
	store *inventory.Store        // of the manager start began, if any

	ec2 *fake.EC2      // backendFake
	vpc *vpctest.Env   // backendVPC
	api controller.EC2 // what the controller calls
	// view is the test's own client of the local VPC, for assertions through the API.
	view *cloudec2.Client
	// ec2Metrics has the controller's EC2 client's metrics (backendVPC).
	ec2Metrics *prometheus.Registry

	vpcID, subnetID, subnetCIDR, zone string
	groups                            []string // the seed policy's groups, existing in the VPC
	nodes                             int      // instances added
}

func start(t *testing.T, branchLimit int) *world {
	t.Helper()
	return startWith(t, options{backend: backendFake, branchLimit: branchLimit})
}

func startWith(t testing.TB, o options) *world {
	t.Helper()
	if o.instanceType == "" {
		o.instanceType = "m5.large"
	}
	if o.backend == "" {
		o.backend = backendFake
	}
	env := testenv.Start(t, testenv.Options{Scheduler: true,
		Webhooks: envtest.WebhookInstallOptions{Paths: []string{"../../config/webhook"}}})
	w := &world{env: env, c: env.Client, opts: o}
	switch o.backend {
	case backendFake:
		f := fake.New()
		f.AddSubnet(cloud.Subnet{ID: subnetID, VPCID: vpcID, CIDR: "10.0.0.0/19", AvailabilityZone: zone})
		for _, g := range []string{controllertest.GroupA, controllertest.GroupB, "sg-0000000000000node"} {
			f.AddSecurityGroup(cloud.SecurityGroup{ID: g, VPCID: vpcID})
		}
		w.ec2, w.api = f, f
		w.vpcID, w.subnetID, w.subnetCIDR, w.zone = vpcID, subnetID, "10.0.0.0/19", zone
		w.groups = []string{controllertest.GroupA, controllertest.GroupB}
	case backendVPC:
		w.vpc = vpctest.Start(t, vpctest.Options{Profile: o.profile})
		pumpClock(t, w.vpc.Clock)
		vpc := w.vpc.NewVPC(t, "10.0.0.0/16")
		sn := w.vpc.NewSubnet(t, *vpc.VpcId, "10.0.0.0/16")
		w.vpcID, w.subnetID, w.subnetCIDR, w.zone = *vpc.VpcId, *sn.SubnetId, *sn.CidrBlock, *sn.AvailabilityZone
		w.groups = []string{w.vpc.NewGroup(t, w.vpcID, "backend-a"), w.vpc.NewGroup(t, w.vpcID, "backend-b")}
		slices.Sort(w.groups)
		w.ec2Metrics = prometheus.NewRegistry()
		w.api = newVPCClient(t, w.vpc.URL, !o.productionClient, w.ec2Metrics)
		w.view = newVPCClient(t, w.vpc.URL, true, nil)
	default:
		t.Fatalf("unknown backend %q", o.backend)
	}
	tab := limits.MustDefault()
	if o.branchLimit > 0 {
		tab.Set(o.instanceType, o.branchLimit)
	}
	var clk clock.WithTicker = clock.RealClock{}
	if !o.realClock {
		w.clock = clocktesting.NewFakeClock(time.Now())
		clk = w.clock
	}
	if o.releaseInterval == 0 {
		o.releaseInterval = time.Second
	}
	w.cfg = controller.Config{ClusterName: cluster, VPCID: w.vpcID, Limits: tab, Clock: clk, Webhooks: true,
		Cooldown: o.cooldown, ReleaseInterval: o.releaseInterval, SweepInterval: time.Hour,
		RetryBase: 20 * time.Millisecond, RetryMax: time.Second, NoReuse: o.noReuse}
	if !o.noManager {
		mgr := controllertest.NewManager(t, env)
		var err error
		if w.store, err = controller.Setup(t.Context(), mgr, w.api, w.cfg); err != nil {
			t.Fatal(err)
		}
		controllertest.Start(t, mgr)
	}
	return w
}

// newVPCClient is the real EC2 client on a local VPC, with its metrics on reg (nil: none);
// wide: with client-side limits wide enough that the server's throttling, not ours, is what
// tests meet.
func newVPCClient(t testing.TB, url string, wide bool, reg prometheus.Registerer) *cloudec2.Client {
	t.Helper()
	o := cloudec2.Options{Region: vpctest.Region, Endpoint: url, Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Registerer: reg}
	o, err := controller.DefaultEC2Budget.Apply(o)
	if err != nil {
		t.Fatal(err)
	}
	if wide {
		o.MutatingQPS, o.MutatingBurst, o.DescribeQPS, o.DescribeBurst = 1000, 1000, 1000, 1000
	}
	c, err := cloudec2.New(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pumpClock keeps the local VPC's fake clock on the wall clock, so its token buckets refill
// and signatures stay fresh, until the test ends. It drives a clock, it waits for nothing.
func pumpClock(t testing.TB, clk *clocktesting.FakeClock) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-tick.C:
				if now.After(clk.Now()) {
					clk.SetTime(now)
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// runningManager is one podsg-controller incarnation the test may kill.
type runningManager struct {
	store  *inventory.Store
	cancel context.CancelFunc
	done   chan error
}

// startManager starts a fresh manager and controller state (noManager worlds) on the EC2
// ec2 returns; it gets the function that kills the incarnation.
func (w *world) startManager(t testing.TB, ec2 func(kill context.CancelFunc) controller.EC2) *runningManager {
	t.Helper()
	mgr := controllertest.NewManager(t, w.env)
	ctx, cancel := context.WithCancel(t.Context())
	store, err := controller.Setup(ctx, mgr, ec2(cancel), w.cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	m := &runningManager{store: store, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- mgr.Start(ctx) }()
	if !waitSynced(ctx, mgr) {
		m.stop(t)
		t.Fatal("caches did not sync")
	}
	return m
}

func waitSynced(ctx context.Context, mgr manager.Manager) bool {
	return mgr.GetCache().WaitForCacheSync(ctx)
}

// stop ends the incarnation (the manager's context, as a SIGKILL ends the process) and waits
// until its runnables returned, so the next one starts from the VPC and the apiserver only.
func (m *runningManager) stop(t testing.TB) {
	t.Helper()
	m.cancel()
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("manager: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("manager did not stop within 60s")
	}
}

// addNode creates an instance (in the fake, or through the local VPC API) and its Node,
// asking for a trunk, schedulable. It returns the Node and the instance id.
func (w *world) addNode(t testing.TB, name string) (*corev1.Node, string) {
	t.Helper()
	w.nodes++
	var instanceID string
	switch w.opts.backend {
	case backendFake:
		instanceID = fmt.Sprintf("i-%017x", w.nodes)
		if err := w.ec2.AddInstance(fake.Instance{ID: instanceID, Type: w.opts.instanceType, SubnetID: w.subnetID,
			SecurityGroups: []string{"sg-0000000000000node"}, MaxENIs: 3, MaxBranches: w.opts.branchLimit}); err != nil {
			t.Fatal(err)
		}
	case backendVPC:
		instanceID = *w.vpc.NewInstance(t, w.subnetID, w.opts.instanceType).InstanceId
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		v1beta1.LabelHasTrunkAttached: "false", corev1.LabelHostname: name}},
		Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", w.zone, instanceID)}}
	controllertest.Create(t, w.c, n)
	// No kubelet runs: play its part, report resources and readiness, and drop the not-ready
	// taint the apiserver puts on new nodes. The controller may patch the node meanwhile.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := w.c.Get(t.Context(), client.ObjectKeyFromObject(n), n); err != nil {
			return err
		}
		n.Spec.Taints = nil
		return w.c.Update(t.Context(), n)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := w.c.Get(t.Context(), client.ObjectKeyFromObject(n), n); err != nil {
			return err
		}
		if n.Status.Capacity == nil {
			n.Status.Capacity = corev1.ResourceList{}
		}
		n.Status.Capacity[corev1.ResourceCPU] = resource.MustParse("64")
		n.Status.Capacity[corev1.ResourceMemory] = resource.MustParse("256Gi")
		n.Status.Capacity[corev1.ResourcePods] = resource.MustParse("250")
		n.Status.Allocatable = n.Status.Capacity.DeepCopy()
		n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
		return w.c.Status().Update(t.Context(), n)
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, instanceID
}

// nodeGroups are the security groups of an instance's primary interface.
func (w *world) nodeGroups(ctx context.Context, instanceID string) ([]string, error) {
	if w.ec2 != nil {
		return []string{"sg-0000000000000node"}, nil
	}
	inst, err := w.view.DescribeInstance(ctx, instanceID)
	return inst.SecurityGroups, err
}

// policy is the seed policy naming groups that exist in the world's VPC.
func (w *world) policy(ns string) *v1beta1.SecurityGroupPolicy {
	p := controllertest.SeedPolicy(ns)
	p.Spec.SecurityGroups.Groups = slices.Clone(w.groups)
	return p
}

// enis lists the ENIs podsg created of a type ("" for all): from the fake's state, or
// through DescribeNetworkInterfaces by cluster tag.
func (w *world) enis(ctx context.Context, typ string) ([]cloud.NetworkInterface, error) {
	if w.ec2 != nil {
		return w.ec2.NetworkInterfaces(typ), nil
	}
	return w.view.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{Type: typ,
		Tags: map[string]string{cloud.TagCluster: cluster}})
}

// eni describes one ENI; ok is false when it does not exist.
func (w *world) eni(ctx context.Context, id string) (cloud.NetworkInterface, bool, error) {
	if w.ec2 != nil {
		e, ok := w.ec2.NetworkInterface(id)
		return e, ok, nil
	}
	out, err := w.view.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{id}})
	if errors.Is(err, cloud.ErrNotFound) || (err == nil && len(out) == 0) {
		return cloud.NetworkInterface{}, false, nil
	}
	if err != nil {
		return cloud.NetworkInterface{}, false, err
	}
	return out[0], true, nil
}

// associations lists every trunk association, through DescribeTrunkInterfaceAssociations of
// each trunk on the local VPC.
func (w *world) associations(ctx context.Context) ([]cloud.TrunkAssociation, error) {
	if w.ec2 != nil {
		return w.ec2.Associations(), nil
	}
	trunks, err := w.enis(ctx, cloud.InterfaceTypeTrunk)
	if err != nil {
		return nil, err
	}
	var out []cloud.TrunkAssociation
	for _, tr := range trunks {
		as, err := w.view.DescribeTrunkInterfaceAssociations(ctx, tr.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, as...)
	}
	return out, nil
}

// must is for assertions outside polling: any error fails the test.
func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// capacity returns the pod-eni allocatable of a node, -1 when absent.
func (w *world) capacity(ctx context.Context, name string) (int64, error) {
	n := &corev1.Node{}
	if err := w.c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		return 0, err
	}
	q, ok := n.Status.Allocatable[v1beta1.ResourcePodENI]
	if !ok {
		return -1, nil
	}
	return q.Value(), nil
}

func (w *world) waitCapacity(t testing.TB, name string, want int64) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		got, err := w.capacity(ctx, name)
		if err == nil && got != want {
			err = fmt.Errorf("node %s advertises %d pod-eni, want %d", name, got, want)
		}
		return err
	})
}

// podENIs returns a pod's parsed pod-eni annotation; ok is false while it has none.
func podENIs(p *corev1.Pod) (enis []v1beta1.PodENI, ok bool, err error) {
	v, ok := p.Annotations[v1beta1.AnnotationPodENI]
	if !ok {
		return nil, false, nil
	}
	enis, err = v1beta1.ParsePodENIs(v)
	if err != nil {
		return nil, true, fmt.Errorf("annotation %q: %w", v, err)
	}
	return enis, true, nil
}

// waitENI waits until a pod is annotated and returns its single branch.
func (w *world) waitENI(t testing.TB, ns, name string) v1beta1.PodENI {
	t.Helper()
	var out v1beta1.PodENI
	testenv.Eventually(t, 60*time.Second, func(ctx context.Context) error {
		p := &corev1.Pod{}
		if err := w.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
			return err
		}
		enis, ok, err := podENIs(p)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("pod %s/%s (node %q) not annotated yet", ns, name, p.Spec.NodeName)
		case len(enis) != 1:
			return fmt.Errorf("pod %s/%s: want one ENI, have %d", ns, name, len(enis))
		}
		out = enis[0]
		return nil
	})
	return out
}

// hasEvent checks that an event with reason was recorded about an object.
func (w *world) hasEvent(ctx context.Context, ns, name, reason string) error {
	var list eventsv1.EventList
	if err := w.c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason {
			return nil
		}
	}
	return fmt.Errorf("no %s event about %s/%s among %d events", reason, ns, name, len(list.Items))
}

func deletePod(t testing.TB, c client.Client, ns, name string) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	// No kubelet confirms termination, so delete at once, as the kubelet would after it.
	if err := c.Delete(t.Context(), p, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
}
