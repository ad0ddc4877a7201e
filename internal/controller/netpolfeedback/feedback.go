// Package netpolfeedback tells users, in Warning events on the policy objects, when a network
// policy does less than it says: it selects no running pod (SelectsNoPods), a rule names a port
// no pod it can mean declares (PortNotExposed), or podsg-agent refuses it, naming the field
// (NotEnforced: a Calico field podsg does not cover, say). Which findings hold is
// internal/netpol's Check; this package lists the cluster's state, reports each finding once
// on the object it is about, and again only when its message changes or after Options.Repeat,
// so that it stays visible past the events' time to live without one event per resync.
//
// podsg-controller runs it, so there is one writer (its leader) instead of one per node agent.
package netpolfeedback

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
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
	Clock    clock.PassiveClock
	// Pods lists pods (default: through kube, without deep copies); podsg-controller reads
	// its cache's indexer (podcache.FromCache).
	Pods podcache.Lister
}

// Reporter checks every policy and records what it finds as events.
type Reporter struct {
	kube     client.Reader
	recorder events.EventRecorder
	served   Served
	opts     Options

	mu sync.Mutex
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
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Pods == nil {
		opts.Pods = podcache.FromClient(kube)
	}
	return &Reporter{kube: kube, recorder: rec, served: served, opts: opts, said: map[saidKey]time.Time{}}
}

// ServedBy asks the API server (through mapper) which optional policy APIs it serves. An API
// installed later is checked from podsg-controller's next start.
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
	s.Calico, err = served(calicov3.GroupVersion.WithKind("GlobalNetworkPolicy").GroupKind(), calicov3.GroupVersion.Version)
	return s, err
}

// key is the one item of the controller's queue: every change leads to one check of all.
var key = reconcile.Request{NamespacedName: types.NamespacedName{Name: "network-policies"}}

// Register adds the reporter to mgr as a controller whose every watch event schedules one
// check of all policies, Debounce later (the queue holds the key once, so a burst costs one).
func (r *Reporter) Register(mgr ctrl.Manager, opts controller.Options) error {
	b := ctrl.NewControllerManagedBy(mgr).Named("networkpolicy.feedback").WithOptions(opts).
		Watches(&corev1.Pod{}, r.enqueue()).
		Watches(&corev1.Namespace{}, r.enqueue()).
		Watches(&corev1.ServiceAccount{}, r.enqueue()).
		Watches(&networkingv1.NetworkPolicy{}, r.enqueue())
	if r.served.ClusterNetworkPolicy {
		b = b.Watches(&cnpv1.ClusterNetworkPolicy{}, r.enqueue())
	}
	if r.served.Calico {
		b = b.Watches(&calicov3.GlobalNetworkPolicy{}, r.enqueue()).Watches(&calicov3.NetworkPolicy{}, r.enqueue())
	}
	return b.Complete(reconcile.Func(func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
		return reconcile.Result{RequeueAfter: r.opts.Repeat}, r.Report(ctx)
	}))
}

// enqueue schedules the check on creations, deletions, and the updates that can change a
// finding: labels, a policy's spec (its generation), a pod finishing. A pod's status changes
// often and its ports not at all, so other updates are ignored.
func (r *Reporter) enqueue() handler.EventHandler {
	add := func(q workqueue.TypedRateLimitingInterface[reconcile.Request]) { q.AddAfter(key, r.opts.Debounce) }
	return handler.Funcs{
		CreateFunc: func(_ context.Context, _ event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		DeleteFunc: func(_ context.Context, _ event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(q)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
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
		obj := objects[ref{f.Kind, f.Namespace, f.Name}]
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

type ref struct{ kind, namespace, name string }

// load lists the policies (of the served APIs), and the running pods as policies see them.
func (r *Reporter) load(ctx context.Context) (netpol.PolicySet, map[ref]client.Object, []*netpol.Pod, error) {
	var ps netpol.PolicySet
	objects := map[ref]client.Object{}
	var nss corev1.NamespaceList
	var sas corev1.ServiceAccountList
	var nps networkingv1.NetworkPolicyList
	lists := []client.ObjectList{&nss, &sas, &nps}
	var cnps cnpv1.ClusterNetworkPolicyList
	if r.served.ClusterNetworkPolicy {
		lists = append(lists, &cnps)
	}
	var gnps calicov3.GlobalNetworkPolicyList
	var calicoNPs calicov3.NetworkPolicyList
	if r.served.Calico {
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
		objects[ref{netpol.KindNetworkPolicy, p.Namespace, p.Name}] = p
	}
	for i := range ps.ClusterPolicies {
		p := &ps.ClusterPolicies[i]
		objects[ref{netpol.KindClusterNetworkPolicy, "", p.Name}] = p
	}
	for i := range ps.GlobalNetworkPolicies {
		p := &ps.GlobalNetworkPolicies[i]
		objects[ref{netpol.KindGlobalNetworkPolicy, "", p.Name}] = p
	}
	for i := range ps.CalicoNetworkPolicies {
		p := &ps.CalicoNetworkPolicies[i]
		objects[ref{netpol.KindCalicoNetworkPolicy, p.Namespace, p.Name}] = p
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
