package policyenforce

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
	cnpclient "sigs.k8s.io/network-policy-api/pkg/client/clientset/versioned"
	cnpinformers "sigs.k8s.io/network-policy-api/pkg/client/informers/externalversions"
	cnplisters "sigs.k8s.io/network-policy-api/pkg/client/listers/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol/calicov3"
)

// Watch is the Source of the API server's watches: pods of every node, namespaces, nodes,
// NetworkPolicies and, when the API server serves them, ClusterNetworkPolicies and Calico's
// GlobalNetworkPolicies and NetworkPolicies (projectcalico.org/v3, with the ServiceAccounts
// whose labels Calico's serviceAccounts selectors match). An optional API not served at the
// start is asked for again every WatchOptions.Discover and watched once it is served (its CRD
// installed later), without a restart.
type Watch struct {
	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	nodes      corelisters.NodeLister
	nps        netlisters.NetworkPolicyLister

	mu      sync.Mutex
	changed chan struct{}
	// The optional APIs' listers, nil until served (set under mu, once).
	cnps cnplisters.ClusterNetworkPolicyLister
	// Calico's: read through the dynamic client (Calico ships no Go client podsg could use,
	// and podsg serves the types as CRDs of its own).
	gnps, calicoNPs cache.GenericLister
	sas             corelisters.ServiceAccountLister
}

// The resources of Calico's policies.
var (
	GlobalNetworkPolicies = calicov3.GroupVersion.WithResource("globalnetworkpolicies")
	CalicoNetworkPolicies = calicov3.GroupVersion.WithResource("networkpolicies")
)

// WatchOptions tune StartWatch.
type WatchOptions struct {
	// Discover is how often an optional policy API not served yet is asked for again
	// (default 30s; one discovery request each time).
	Discover time.Duration
}

// StartWatch is WatchOptions{}.Start.
func StartWatch(ctx context.Context, kube kubernetes.Interface, cnp cnpclient.Interface, dyn dynamic.Interface) (*Watch, string, error) {
	return WatchOptions{}.Start(ctx, kube, cnp, dyn)
}

// Start starts the watches and returns once their caches have synced. Without the
// ClusterNetworkPolicy CRD (policy.networking.k8s.io/v1beta1), or without Calico's
// (projectcalico.org/v3), the agent enforces the other layers, says so in the returned note,
// and asks the API server again every Discover until ctx ends: once the API is served, its
// watch starts and the next sync enforces its policies.
func (o WatchOptions) Start(ctx context.Context, kube kubernetes.Interface, cnp cnpclient.Interface, dyn dynamic.Interface) (*Watch, string, error) {
	if o.Discover == 0 {
		o.Discover = 30 * time.Second
	}
	w := &Watch{changed: make(chan struct{})}
	f := informers.NewSharedInformerFactory(kube, 10*time.Minute)
	infs := []cache.SharedIndexInformer{f.Core().V1().Pods().Informer(), f.Core().V1().Namespaces().Informer(),
		f.Core().V1().Nodes().Informer(), f.Networking().V1().NetworkPolicies().Informer()}
	w.pods, w.namespaces = f.Core().V1().Pods().Lister(), f.Core().V1().Namespaces().Lister()
	w.nodes, w.nps = f.Core().V1().Nodes().Lister(), f.Networking().V1().NetworkPolicies().Lister()
	for _, inf := range infs {
		if _, err := inf.AddEventHandler(w.handler()); err != nil {
			return nil, "", fmt.Errorf("watching for network policy: %w", err)
		}
	}
	f.Start(ctx.Done())
	// A watch the agent may not list never syncs: give up with the reason instead of hanging.
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	for typ, ok := range f.WaitForCacheSync(sctx.Done()) {
		if !ok {
			return nil, "", fmt.Errorf("syncing the %v cache within %v (may the agent list and watch pods, namespaces, nodes and networkpolicies?)", typ, syncTimeout)
		}
	}
	optional := []optionalAPI{
		{name: "ClusterNetworkPolicy", gv: cnpv1.GroupVersion.String(), resources: []string{"clusternetworkpolicies"},
			start: func(ctx context.Context) error { return w.watchCNP(ctx, cnp) }},
		{name: "Calico's policies", gv: calicov3.GroupVersion.String(), resources: []string{GlobalNetworkPolicies.Resource, CalicoNetworkPolicies.Resource},
			start: func(ctx context.Context) error { return w.watchCalico(ctx, kube, dyn) }},
	}
	var notes []string
	var later []optionalAPI
	for _, api := range optional {
		served, err := resourcesServed(kube, api.gv, api.resources...)
		if err != nil {
			return nil, "", err
		}
		if !served {
			later = append(later, api)
			notes = append(notes, fmt.Sprintf("the API server does not serve %s %s: not enforcing %s until it does (asking again every %v)",
				api.gv, strings.Join(api.resources, " and "), api.name, o.Discover))
			continue
		}
		if err := api.start(ctx); err != nil {
			return nil, "", err
		}
	}
	if len(later) > 0 {
		go w.discover(ctx, kube, later, o.Discover)
	}
	return w, strings.Join(notes, "; "), nil
}

// optionalAPI is a policy API the cluster may serve or not, and how to start watching it.
type optionalAPI struct {
	name      string
	gv        string
	resources []string
	start     func(context.Context) error
}

// discover asks every interval whether the APIs are served yet, and starts the watches of
// those that are; a failed start is logged and tried again at the next tick.
func (w *Watch) discover(ctx context.Context, kube kubernetes.Interface, apis []optionalAPI, interval time.Duration) {
	log := logr.FromContextOrDiscard(ctx)
	t := time.NewTicker(interval)
	defer t.Stop()
	for len(apis) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		apis = slices.DeleteFunc(apis, func(api optionalAPI) bool {
			served, err := resourcesServed(kube, api.gv, api.resources...)
			if err == nil && served {
				err = api.start(ctx)
			}
			switch {
			case err != nil:
				log.Error(err, "starting the watch of an optional policy API; trying again", "api", api.name, "in", interval)
				return false
			case !served:
				return false
			}
			log.Info("the API server now serves "+api.name+": enforcing those policies too", "groupVersion", api.gv)
			w.notify() // a sync with the new API's policies
			return true
		})
	}
}

func (w *Watch) handler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.notify() },
		UpdateFunc: func(any, any) { w.notify() },
		DeleteFunc: func(any) { w.notify() },
	}
}

// startSynced adds the handler to the informers, starts them and waits for their caches,
// within syncTimeout. On failure the informers are stopped again.
func (w *Watch) startSynced(ctx context.Context, what string, start func(stop <-chan struct{}), synced []cache.InformerSynced, infs ...cache.SharedIndexInformer) error {
	for _, inf := range infs {
		if _, err := inf.AddEventHandler(w.handler()); err != nil {
			return fmt.Errorf("watching %s: %w", what, err)
		}
	}
	// The informers run until ctx ends, or stop at once if they do not sync.
	stopCh := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(stopCh) }) }
	context.AfterFunc(ctx, stop)
	start(stopCh)
	sctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(sctx.Done(), synced...) {
		stop()
		return fmt.Errorf("syncing the %s cache within %v (may the agent list and watch them?)", what, syncTimeout)
	}
	return nil
}

// watchCNP starts the ClusterNetworkPolicy watch and, once synced, hands its lister to Snapshot.
func (w *Watch) watchCNP(ctx context.Context, cnp cnpclient.Interface) error {
	cf := cnpinformers.NewSharedInformerFactory(cnp, 10*time.Minute)
	inf := cf.Policy().V1beta1().ClusterNetworkPolicies()
	if err := w.startSynced(ctx, "clusternetworkpolicies", cf.Start, []cache.InformerSynced{inf.Informer().HasSynced}, inf.Informer()); err != nil {
		return err
	}
	w.mu.Lock()
	w.cnps = inf.Lister()
	w.mu.Unlock()
	return nil
}

// watchCalico starts the watches of Calico's policies and of the ServiceAccounts their
// selectors read and, once synced, hands their listers to Snapshot.
func (w *Watch) watchCalico(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface) error {
	df := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 10*time.Minute)
	gnps, calicoNPs := df.ForResource(GlobalNetworkPolicies), df.ForResource(CalicoNetworkPolicies)
	f := informers.NewSharedInformerFactory(kube, 10*time.Minute)
	sas := f.Core().V1().ServiceAccounts()
	infs := []cache.SharedIndexInformer{gnps.Informer(), calicoNPs.Informer(), sas.Informer()}
	synced := []cache.InformerSynced{infs[0].HasSynced, infs[1].HasSynced, infs[2].HasSynced}
	start := func(stop <-chan struct{}) { df.Start(stop); f.Start(stop) }
	if err := w.startSynced(ctx, "globalnetworkpolicies, networkpolicies.projectcalico.org and serviceaccounts", start, synced, infs...); err != nil {
		return err
	}
	w.mu.Lock()
	w.gnps, w.calicoNPs, w.sas = gnps.Lister(), calicoNPs.Lister(), sas.Lister()
	w.mu.Unlock()
	return nil
}

// syncTimeout bounds the first sync of the watches.
const syncTimeout = 2 * time.Minute

// resourcesServed tells whether the API server serves every one of the resources in gv.
func resourcesServed(kube kubernetes.Interface, gv string, resources ...string) (bool, error) {
	list, err := kube.Discovery().ServerResourcesForGroupVersion(gv)
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("asking the API server whether it serves %s: %w", gv, err)
	}
	served := map[string]bool{}
	for _, r := range list.APIResources {
		served[r.Name] = true
	}
	for _, r := range resources {
		if !served[r] {
			return false, nil
		}
	}
	return true, nil
}

func (w *Watch) notify() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// Changed implements Source.
func (w *Watch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// Snapshot implements Source.
func (w *Watch) Snapshot() (Inputs, error) {
	var in Inputs
	var err error
	if in.Pods, err = w.pods.List(labels.Everything()); err != nil {
		return in, err
	}
	if in.Namespaces, err = w.namespaces.List(labels.Everything()); err != nil {
		return in, err
	}
	if in.Nodes, err = w.nodes.List(labels.Everything()); err != nil {
		return in, err
	}
	if in.NetworkPolicies, err = w.nps.List(labels.Everything()); err != nil {
		return in, err
	}
	w.mu.Lock()
	cnps, sas, gnps, calicoNPs := w.cnps, w.sas, w.gnps, w.calicoNPs
	w.mu.Unlock()
	if cnps != nil {
		if in.ClusterPolicies, err = cnps.List(labels.Everything()); err != nil {
			return in, err
		}
	}
	if sas != nil {
		if in.ServiceAccounts, err = sas.List(labels.Everything()); err != nil {
			return in, err
		}
		if in.GlobalNetworkPolicies, err = listTyped[calicov3.GlobalNetworkPolicy](gnps); err != nil {
			return in, err
		}
		if in.CalicoNetworkPolicies, err = listTyped[calicov3.NetworkPolicy](calicoNPs); err != nil {
			return in, err
		}
	}
	return in, nil
}

// listTyped lists a dynamic informer's objects as T. An object that does not convert (the
// CRD's schema makes that unlikely) fails the snapshot, and so the sync, which is retried:
// enforcing the policies without it would enforce less than the cluster says.
func listTyped[T any](l cache.GenericLister) ([]*T, error) {
	objs, err := l.List(labels.Everything())
	if err != nil {
		return nil, err
	}
	out := make([]*T, 0, len(objs))
	for _, o := range objs {
		u, ok := o.(*unstructured.Unstructured)
		if !ok {
			return nil, fmt.Errorf("unexpected %T in a dynamic informer", o)
		}
		t := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, t); err != nil {
			return nil, fmt.Errorf("reading %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
		out = append(out, t)
	}
	return out, nil
}

var (
	_ Source = (*Watch)(nil)
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
