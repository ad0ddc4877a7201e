package policyenforce

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// Inputs is what the cluster says, as the watches cache it.
type Inputs struct {
	Pods            []*corev1.Pod // of every node: they are the peers
	Namespaces      []*corev1.Namespace
	Nodes           []*corev1.Node
	NetworkPolicies []*networkingv1.NetworkPolicy
	ClusterPolicies []*cnpv1.ClusterNetworkPolicy
	// Calico's policies (projectcalico.org/v3), and the ServiceAccounts whose labels their
	// serviceAccounts selectors match; empty where the API server does not serve them.
	GlobalNetworkPolicies []*calicov3.GlobalNetworkPolicy
	CalicoNetworkPolicies []*calicov3.NetworkPolicy
	ServiceAccounts       []*corev1.ServiceAccount
}

// Source is the cluster's state: a snapshot, and a signal at each change.
type Source interface {
	Snapshot() (Inputs, error)
	// Changed returns a channel closed at the next change.
	Changed() <-chan struct{}
}

// Applier is the node's nftables: it installs a ruleset script and reads the table's named
// counters (none, without error, when the table does not exist).
type Applier interface {
	Apply(ctx context.Context, script string) error
	Counters(ctx context.Context) (map[string]netpol.CounterValue, error)
}

// Config is the node's part of enforcement.
type Config struct {
	NodeName string
	// PodInterfaces and NotPodInterfaces: see netpol.NodeOptions.
	PodInterfaces, NotPodInterfaces []string
	LogDenied                       bool
	// Resync replaces the ruleset this often even without a change (someone may have
	// touched the table); 0 never does.
	Resync time.Duration
}

// LocalPod is a pod of this node as the agent's CNI records know it: its host veth and
// address (the API server learns the address only after the ADD returns).
type LocalPod struct {
	Namespace, Name string
	HostVeth        string
	IP              netip.Addr
	// Pod is the pod as the allocator saw it, used until the watch has it.
	Pod *corev1.Pod
}

func (p LocalPod) key() string { return p.Namespace + "/" + p.Name }

// Enforcer keeps the node's ruleset equal to the policies.
type Enforcer struct {
	cfg     Config
	src     Source
	nft     Applier
	metrics *metrics

	mu        sync.Mutex
	local     map[string]LocalPod
	requested uint64        // bumped by each change the ruleset must catch up with
	applied   uint64        // the highest requested value a successful sync covered
	done      chan struct{} // closed (and replaced) after each successful sync
	lastErr   error
	counters  map[string]string // counter name → policy, of the installed ruleset

	kick chan struct{}
}

// New returns an enforcer; Run drives it. reg may be nil.
func New(cfg Config, src Source, nft Applier, reg prometheus.Registerer) *Enforcer {
	e := &Enforcer{cfg: cfg, src: src, nft: nft, local: map[string]LocalPod{}, done: make(chan struct{}),
		kick: make(chan struct{}, 1), counters: map[string]string{}}
	e.metrics = newMetrics(reg, e)
	return e
}

// SetLocal records a pod of this node (from its CNI record) without waiting for the ruleset:
// for the records found at start, before the first sync.
func (e *Enforcer) SetLocal(p LocalPod) {
	e.mu.Lock()
	e.local[p.key()] = p
	e.requested++
	e.mu.Unlock()
	e.poke()
}

// Admit records a new pod of this node and returns once a ruleset that knows it is
// installed: the CNI ADD calls it, so the pod never runs without its rules.
func (e *Enforcer) Admit(ctx context.Context, p LocalPod) error {
	e.mu.Lock()
	e.local[p.key()] = p
	e.requested++
	want := e.requested
	e.mu.Unlock()
	e.poke()
	for {
		e.mu.Lock()
		applied, done := e.applied, e.done
		e.mu.Unlock()
		if applied >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			e.mu.Lock()
			lastErr := e.lastErr
			e.mu.Unlock()
			if lastErr != nil {
				return fmt.Errorf("waiting for pod %s's network policy rules: %w (last attempt: %w)", p.key(), ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting for pod %s's network policy rules: %w", p.key(), ctx.Err())
		case <-done:
		}
	}
}

// Forget drops a pod of this node (its CNI DEL, or the pod is gone).
func (e *Enforcer) Forget(namespace, name string) {
	e.mu.Lock()
	_, ok := e.local[namespace+"/"+name]
	delete(e.local, namespace+"/"+name)
	if ok {
		e.requested++
	}
	e.mu.Unlock()
	if ok {
		e.poke()
	}
}

func (e *Enforcer) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// Run syncs at once, then at every change, until ctx ends; a failed sync is retried with
// backoff. It never deletes the table: a stopped agent leaves the last ruleset enforced.
func (e *Enforcer) Run(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("netpol")
	backoff := time.Duration(0)
	var resync <-chan time.Time
	if e.cfg.Resync > 0 {
		t := time.NewTicker(e.cfg.Resync)
		defer t.Stop()
		resync = t.C
	}
	for {
		changed := e.src.Changed() // before the snapshot, so a change during the sync is not missed
		var retry <-chan time.Time
		if err := e.Sync(ctx); err != nil {
			backoff = min(max(2*backoff, 100*time.Millisecond), 10*time.Second)
			log.Error(err, "installing the network policy ruleset", "retryIn", backoff)
			retry = time.After(backoff)
		} else {
			backoff = 0
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
			e.mu.Lock()
			e.requested++
			e.mu.Unlock()
		case <-e.kick:
		case <-resync:
		case <-retry:
		}
	}
}

// Sync compiles the policies for the node's pods and installs the ruleset, carrying the
// counters over.
func (e *Enforcer) Sync(ctx context.Context) error {
	e.mu.Lock()
	gen := e.requested
	local := make([]LocalPod, 0, len(e.local))
	for _, p := range e.local {
		local = append(local, p)
	}
	e.mu.Unlock()
	began := time.Now()
	err := e.sync(ctx, local)
	e.metrics.observe(time.Since(began), err)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lastErr = err
	if err != nil {
		return err
	}
	e.applied = max(e.applied, gen)
	close(e.done)
	e.done = make(chan struct{})
	return nil
}

func (e *Enforcer) sync(ctx context.Context, local []LocalPod) error {
	in, err := e.src.Snapshot()
	if err != nil {
		return fmt.Errorf("reading the watches: %w", err)
	}
	eval, u, pods, errs := Compile(e.cfg.NodeName, in, local)
	for _, err := range errs {
		logr.FromContextOrDiscard(ctx).Error(err, "left out an invalid policy")
	}
	carry, err := e.nft.Counters(ctx)
	if err != nil {
		return fmt.Errorf("reading the ruleset's counters: %w", err)
	}
	rs, err := netpol.CompileNode(eval, u, pods, netpol.NodeOptions{PodInterfaces: e.cfg.PodInterfaces,
		NotPodInterfaces: e.cfg.NotPodInterfaces, Carry: carry, LogDenied: e.cfg.LogDenied})
	if err != nil {
		return fmt.Errorf("compiling the ruleset: %w", err)
	}
	if err := e.nft.Apply(ctx, rs.Script); err != nil {
		return fmt.Errorf("installing the ruleset: %w", err)
	}
	e.mu.Lock()
	e.counters = rs.Counters
	e.mu.Unlock()
	e.metrics.localPods.Set(float64(len(pods)))
	return nil
}

// Compile turns the cluster's state and the node's pods into the evaluator, the universe and
// the node's pods to enforce. A policy the evaluator refuses is left out and returned as an
// error (the API server validated it, so this is rare; the others still apply).
func Compile(nodeName string, in Inputs, local []LocalPod) (*netpol.Evaluator, *netpol.Universe, []netpol.LocalPod, []error) {
	eval, errs := evaluator(in)
	u, pods := universe(nodeName, in, local)
	return eval, u, pods, errs
}

// evaluator builds the layers of the policies the agent enforces (netpol.PolicySet.Enforced:
// each checked alone, a refused one left out and returned as an error): Kubernetes' (Admin
// tier, NetworkPolicy, Baseline tier), with Calico's default tier in the NetworkPolicy layer's
// place (the NetworkPolicies at order 1000 in it) once a Calico policy exists, as `podsg
// reach` evaluates them (netpol.WithCalico).
func evaluator(in Inputs) (*netpol.Evaluator, []error) {
	var all netpol.PolicySet
	for _, p := range in.NetworkPolicies {
		all.NetworkPolicies = append(all.NetworkPolicies, *p)
	}
	for _, p := range in.ClusterPolicies {
		all.ClusterPolicies = append(all.ClusterPolicies, *p)
	}
	for _, p := range in.GlobalNetworkPolicies {
		all.GlobalNetworkPolicies = append(all.GlobalNetworkPolicies, *p)
	}
	for _, p := range in.CalicoNetworkPolicies {
		all.CalicoNetworkPolicies = append(all.CalicoNetworkPolicies, *p)
	}
	ps, refused := all.Enforced()
	errs := make([]error, 0, len(refused))
	for _, r := range refused {
		errs = append(errs, r)
	}
	var eval *netpol.Evaluator
	var err error
	if len(ps.GlobalNetworkPolicies)+len(ps.CalicoNetworkPolicies) > 0 {
		eval, err = netpol.WithCalico(ps.ClusterPolicies, ps.NetworkPolicies, ps.GlobalNetworkPolicies, ps.CalicoNetworkPolicies)
	} else {
		eval, err = netpol.Standard(ps.ClusterPolicies, ps.NetworkPolicies)
	}
	if err != nil { // each was checked alone: only a bug gets here
		errs = append(errs, err)
		eval, _ = netpol.Standard(nil, nil)
	}
	return eval, errs
}

// universe is every pod and node as policies see them, and the node's pods to enforce.
func universe(nodeName string, in Inputs, local []LocalPod) (*netpol.Universe, []netpol.LocalPod) {
	var labels netpol.Labels
	for _, ns := range in.Namespaces {
		labels.AddNamespace(ns)
	}
	for _, sa := range in.ServiceAccounts {
		labels.AddServiceAccount(sa)
	}
	u := &netpol.Universe{}
	byKey := map[string]*netpol.Pod{}
	for _, p := range in.Pods {
		np := labels.Pod(p)
		if np == nil {
			continue
		}
		byKey[p.Namespace+"/"+p.Name] = np
		u.Pods = append(u.Pods, np)
	}
	slices.SortFunc(local, func(a, b LocalPod) int {
		if a.key() < b.key() {
			return -1
		}
		return 1
	})
	var pods []netpol.LocalPod
	for _, lp := range local {
		np := byKey[lp.key()]
		if np == nil {
			if lp.Pod == nil {
				continue // gone before the watch saw it: its veth stays unknown, so dropped
			}
			if np = labels.Pod(lp.Pod); np == nil {
				continue
			}
			u.Pods = append(u.Pods, np)
		}
		np.NodeName = nodeName
		if lp.IP.IsValid() && !slices.Contains(np.IPs, lp.IP) {
			np.IPs = append(np.IPs, lp.IP)
		}
		pods = append(pods, netpol.LocalPod{Pod: np, Interface: lp.HostVeth})
	}
	for _, n := range in.Nodes {
		u.Nodes = append(u.Nodes, netpol.NodeFrom(n))
	}
	return u, pods
}
