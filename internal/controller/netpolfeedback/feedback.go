// Package netpolfeedback tells users, in Warning events on the policy objects, when a network
// policy does less than it says: it selects no running pod (SelectsNoPods), a rule names a port
// no pod it can mean declares (PortNotExposed), or podsg-agent refuses it, naming the field
// (NotEnforced: a Calico field podsg does not cover, say). Which findings hold is
// internal/netpol's Check; this package lists the cluster's state, reports each finding once
// on the object it is about, and again only when its message changes or after Options.Repeat,
// so that it stays visible past the events' time to live without one event per resync.
//
// podsg-controller runs it, so there is one writer (its leader) instead of one per node agent.
// The ClusterNetworkPolicy and Calico APIs are optional: an API the API server does not serve
// when podsg-controller starts is asked for again every Options.Discover, and watched from
// the moment it is served (its CRD installed later), without a restart.
package netpolfeedback

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/controller/podcache"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// +kubebuilder:rbac:groups="",resources=pods;namespaces;serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy.networking.k8s.io,resources=clusternetworkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=projectcalico.org,resources=globalnetworkpolicies;networkpolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Served says which optional policy APIs the API server serves (their CRDs installed).
type Served struct {
	ClusterNetworkPolicy, Calico bool
}

// Options configure the reporter.
type Options struct {
	// Repeat is how long a finding that still holds goes unrepeated (default 30m): events
	// live an hour by default, so a dead policy stays visible.
	Repeat time.Duration
	// Debounce gathers a burst of changes into one check (default 2s): each check reads every
	// pod and policy of the cluster.
	Debounce time.Duration
	// Discover is how often an optional policy API not served yet is asked for again
	// (default 30s): discovery is one request, and a newly installed CRD's policies are then
	// checked within that time.
	Discover time.Duration
	Clock    clock.PassiveClock
	// Pods lists pods (default: through kube, without deep copies); podsg-controller reads
	// its cache's indexer (podcache.FromCache).
	Pods podcache.Lister
}

// Reporter checks every policy and records what it finds as events.
type Reporter struct {
	kube     client.Reader
	recorder events.EventRecorder
	opts     Options

	mu sync.Mutex
	// served are the optional APIs watched (and so listed) so far: Register's discovery adds
	// to them as the API server comes to serve them.
	served Served
	// said is when each finding still holding was last reported: a new or changed message
	// is a new key, so it is reported at once.
	said map[saidKey]time.Time
}

type saidKey struct {
	uid             types.UID
	reason, message string
}

// New returns a reporter that reads through kube (the manager's cache) and records events
// with rec.
func New(kube client.Reader, rec events.EventRecorder, served Served, opts Options) *Reporter {
	if opts.Repeat == 0 {
		opts.Repeat = 30 * time.Minute
	}
	if opts.Debounce == 0 {
		opts.Debounce = 2 * time.Second
	}
	if opts.Discover == 0 {
		opts.Discover = 30 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Pods == nil {
		opts.Pods = podcache.FromClient(kube)
	}
	return &Reporter{kube: kube, recorder: rec, served: served, opts: opts, said: map[saidKey]time.Time{}}
}

// ServedBy asks the API server (through mapper) which optional policy APIs it serves: Calico's
// when both of its policy kinds are. controller-runtime's dynamic mapper asks the API server
// again for a group it does not know, so an API installed since is found.
func ServedBy(mapper meta.RESTMapper) (Served, error) {
	served := func(gk schema.GroupKind, version string) (bool, error) {
		_, err := mapper.RESTMapping(gk, version)
		switch {
		case meta.IsNoMatchError(err):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("asking the API server whether it serves %s: %w", gk, err)
		}
		return true, nil
	}
	var s Served
	var err error
	if s.ClusterNetworkPolicy, err = served(schema.GroupKind{Group: cnpv1.GroupVersion.Group, Kind: "ClusterNetworkPolicy"}, cnpv1.GroupVersion.Version); err != nil {
		return s, err
	}
	for _, kind := range []string{"GlobalNetworkPolicy", "NetworkPolicy"} {
		if s.Calico, err = served(calicov3.GroupVersion.WithKind(kind).GroupKind(), calicov3.GroupVersion.Version); err != nil || !s.Calico {
			return s, err
		}
	}
	return s, nil
}

// key is the one item of the controller's queue: every change leads to one check of all.
var key = reconcile.Request{NamespacedName: types.NamespacedName{Name: "network-policies"}}

// Register adds the reporter to mgr as a controller whose every watch event schedules one
// check of all policies, Debounce later (the queue holds the key once, so a burst costs one).
// The optional APIs served now are watched from the start; for the others, a runnable asks
// every Discover until they are served, then adds their watches to the running controller.
func (r *Reporter) Register(mgr ctrl.Manager, opts controller.Options) error {
	served := r.servedNow()
	b := ctrl.NewControllerManagedBy(mgr).Named("networkpolicy.feedback").WithOptions(opts).
		Watches(&corev1.Pod{}, enqueue[client.Object](r)).
		Watches(&corev1.Namespace{}, enqueue[client.Object](r)).
		Watches(&corev1.ServiceAccount{}, enqueue[client.Object](r)).
		Watches(&networkingv1.NetworkPolicy{}, enqueue[client.Object](r))
	if served.ClusterNetworkPolicy {
		b = b.Watches(&cnpv1.ClusterNetworkPolicy{}, enqueue[client.Object](r))
	}
	if served.Calico {
		b = b.Watches(&calicov3.GlobalNetworkPolicy{}, enqueue[client.Object](r)).Watches(&calicov3.NetworkPolicy{}, enqueue[client.Object](r))
	}
	ctl, err := b.Build(reconcile.Func(func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
		return reconcile.Result{RequeueAfter: r.opts.Repeat}, r.Report(ctx)
	}))
	if err != nil {
		return err
	}
	if served.ClusterNetworkPolicy && served.Calico {
		return nil
	}
	return mgr.Add(&discoverer{r: r, ctl: ctl, mapper: mgr.GetRESTMapper(), cache: mgr.GetCache(), log: mgr.GetLogger().WithName("networkpolicy.feedback")})
}

func (r *Reporter) servedNow() Served {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.served
}

// discoverer watches the optional policy APIs that were not served at the start, once they are.
type discoverer struct {
	r      *Reporter
	ctl    controller.Controller
	mapper meta.RESTMapper
	cache  cache.Cache
	log    logr.Logger // the manager's: it gives its runnables a context without one
}

// NeedLeaderElection: the controller it adds watches to runs on the leader only.
func (d *discoverer) NeedLeaderElection() bool { return true }

// Start asks at once, then every Discover, until every optional API is watched. An API
// server that cannot be asked is logged and asked again at the next tick.
func (d *discoverer) Start(ctx context.Context) error {
	ctx = logr.NewContext(ctx, d.log)
	log := d.log
	t := time.NewTicker(d.r.opts.Discover)
	defer t.Stop()
	for {
		done, err := d.discover(ctx)
		if err != nil {
			log.Error(err, "asking which optional network policy APIs are served; asking again", "in", d.r.opts.Discover)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// discover watches each optional API newly served, and says whether all of them are watched.
// The reporter lists an API only once its watch is added, so a check never lists a kind the
// cache does not watch; the watch's first list then schedules a check if the API holds policies.
func (d *discoverer) discover(ctx context.Context) (bool, error) {
	now, err := ServedBy(d.mapper)
	if err != nil {
		return false, err
	}
	was := d.r.servedNow()
	if now.ClusterNetworkPolicy && !was.ClusterNetworkPolicy {
		if err := d.ctl.Watch(source.Kind(d.cache, &cnpv1.ClusterNetworkPolicy{}, enqueue[*cnpv1.ClusterNetworkPolicy](d.r))); err != nil {
			return false, fmt.Errorf("watching ClusterNetworkPolicies: %w", err)
		}
		d.r.setServed(func(s *Served) { s.ClusterNetworkPolicy = true })
		logf.FromContext(ctx).Info("the API server now serves ClusterNetworkPolicy: checking those policies too")
	}
	if now.Calico && !was.Calico {
		for _, src := range []source.Source{
			source.Kind(d.cache, &calicov3.GlobalNetworkPolicy{}, enqueue[*calicov3.GlobalNetworkPolicy](d.r)),
			source.Kind(d.cache, &calicov3.NetworkPolicy{}, enqueue[*calicov3.NetworkPolicy](d.r)),
		} {
			if err := d.ctl.Watch(src); err != nil {
				return false, fmt.Errorf("watching Calico's policies: %w", err)
			}
		}
		d.r.setServed(func(s *Served) { s.Calico = true })
		logf.FromContext(ctx).Info("the API server now serves Calico's GlobalNetworkPolicy and NetworkPolicy: checking those policies too")
	}
	s := d.r.servedNow()
	return s.ClusterNetworkPolicy && s.Calico, nil
}

func (r *Reporter) setServed(f func(*Served)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.served)
}

// enqueue schedules the check on creations, deletions, and the updates that can change a
// finding: labels, a policy's spec (its generation), a pod finishing. A pod's status changes
// often and its ports not at all, so other updates are ignored.
func enqueue[T client.Object](r *Reporter) handler.TypedEventHandler[T, reconcile.Request] {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) { q.AddAfter(key, r.opts.Debounce) }
	return handler.TypedFuncs[T, reconcile.Request]{
		CreateFunc: func(_ context.Context, _ event.TypedCreateEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		DeleteFunc: func(_ context.Context, _ event.TypedDeleteEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		UpdateFunc: func(_ context.Context, e event.TypedUpdateEvent[T], q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if relevantUpdate(e.ObjectOld, e.ObjectNew) {
				add(q)
			}
		},
	}
}

func relevantUpdate(old, cur client.Object) bool {
	if !maps.Equal(old.GetLabels(), cur.GetLabels()) || old.GetGeneration() != cur.GetGeneration() {
		return true
	}
	op, ok1 := old.(*corev1.Pod)
	cp, ok2 := cur.(*corev1.Pod)
	return ok1 && ok2 && netpol.Finished(op) != netpol.Finished(cp)
}

// Report checks every policy against the running pods and records a Warning event for each
// finding not reported yet (or whose message changed, or last reported Repeat ago).
func (r *Reporter) Report(ctx context.Context) error {
	ps, objects, pods, err := r.load(ctx)
	if err != nil {
		return err
	}
	findings := netpol.Check(ps, pods)
	now := r.opts.Clock.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[saidKey]bool{}
	for _, f := range findings {
		obj := objects[f.PolicyRef]
		if obj == nil {
			continue // Check reports only policies it was given: cannot happen
		}
		k := saidKey{uid: obj.GetUID(), reason: f.Reason, message: f.Message}
		seen[k] = true
		if at, ok := r.said[k]; ok && now.Sub(at) < r.opts.Repeat {
			continue
		}
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, f.Reason, "CheckPolicy", "%s", f.Message)
		r.said[k] = now
		logf.FromContext(ctx).V(1).Info("network policy finding", "kind", f.Kind, "policy", client.ObjectKeyFromObject(obj), "reason", f.Reason, "message", f.Message)
	}
	// A finding that no longer holds is forgotten: if it comes back, it is reported again.
	for k := range r.said {
		if !seen[k] {
			delete(r.said, k)
		}
	}
	return nil
}

// load lists the policies (of the served APIs), and the pods as policies see them.
func (r *Reporter) load(ctx context.Context) (netpol.PolicySet, map[netpol.PolicyRef]client.Object, []*netpol.Pod, error) {
	var ps netpol.PolicySet
	objects := map[netpol.PolicyRef]client.Object{}
	var nss corev1.NamespaceList
	var sas corev1.ServiceAccountList
	var nps networkingv1.NetworkPolicyList
	lists := []client.ObjectList{&nss, &sas, &nps}
	served := r.servedNow()
	var cnps cnpv1.ClusterNetworkPolicyList
	if served.ClusterNetworkPolicy {
		lists = append(lists, &cnps)
	}
	var gnps calicov3.GlobalNetworkPolicyList
	var calicoNPs calicov3.NetworkPolicyList
	if served.Calico {
		lists = append(lists, &gnps, &calicoNPs)
	}
	for _, l := range lists {
		if err := r.kube.List(ctx, l); err != nil {
			return ps, nil, nil, fmt.Errorf("listing %T: %w", l, err)
		}
	}
	ps = netpol.PolicySet{NetworkPolicies: nps.Items, ClusterPolicies: cnps.Items,
		GlobalNetworkPolicies: gnps.Items, CalicoNetworkPolicies: calicoNPs.Items}
	for i := range ps.NetworkPolicies {
		p := &ps.NetworkPolicies[i]
		objects[netpol.PolicyRef{Kind: netpol.KindNetworkPolicy, Namespace: p.Namespace, Name: p.Name}] = p
	}
	for i := range ps.ClusterPolicies {
		p := &ps.ClusterPolicies[i]
		objects[netpol.PolicyRef{Kind: netpol.KindClusterNetworkPolicy, Namespace: "", Name: p.Name}] = p
	}
	for i := range ps.GlobalNetworkPolicies {
		p := &ps.GlobalNetworkPolicies[i]
		objects[netpol.PolicyRef{Kind: netpol.KindGlobalNetworkPolicy, Namespace: "", Name: p.Name}] = p
	}
	for i := range ps.CalicoNetworkPolicies {
		p := &ps.CalicoNetworkPolicies[i]
		objects[netpol.PolicyRef{Kind: netpol.KindCalicoNetworkPolicy, Namespace: p.Namespace, Name: p.Name}] = p
	}
	var labels netpol.Labels
	for i := range nss.Items {
		labels.AddNamespace(&nss.Items[i])
	}
	for i := range sas.Items {
		labels.AddServiceAccount(&sas.Items[i])
	}
	// Read only: the cache's own pods, not a copy of every pod of the cluster at every check.
	pods, err := r.opts.Pods(ctx, "")
	if err != nil {
		return ps, nil, nil, err
	}
	out := make([]*netpol.Pod, 0, len(pods))
	for _, p := range pods {
		if np := labels.Pod(p); np != nil {
			out = append(out, np)
		}
	}
	return ps, objects, out, nil
}
