package policyenforce

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
// whose labels Calico's serviceAccounts selectors match).
type Watch struct {
	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	nodes      corelisters.NodeLister
	nps        netlisters.NetworkPolicyLister
	cnps       cnplisters.ClusterNetworkPolicyLister // nil when not served
	// Calico's, nil when not served: read through the dynamic client (Calico ships no Go
	// client podsg could use, and podsg serves the types as CRDs of its own).
	gnps, calicoNPs cache.GenericLister
	sas             corelisters.ServiceAccountLister

	mu      sync.Mutex
	changed chan struct{}
}

// The resources of Calico's policies.
var (
	GlobalNetworkPolicies = calicov3.GroupVersion.WithResource("globalnetworkpolicies")
	CalicoNetworkPolicies = calicov3.GroupVersion.WithResource("networkpolicies")
)

// StartWatch starts the watches and returns once their caches have synced. Without the
// ClusterNetworkPolicy CRD (policy.networking.k8s.io/v1beta1), or without Calico's
// (projectcalico.org/v3), the agent enforces the other layers, and says so in the returned
// note.
func StartWatch(ctx context.Context, kube kubernetes.Interface, cnp cnpclient.Interface, dyn dynamic.Interface) (*Watch, string, error) {
	w := &Watch{changed: make(chan struct{})}
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.notify() },
		UpdateFunc: func(any, any) { w.notify() },
		DeleteFunc: func(any) { w.notify() },
	}
	f := informers.NewSharedInformerFactory(kube, 10*time.Minute)
	infs := []cache.SharedIndexInformer{f.Core().V1().Pods().Informer(), f.Core().V1().Namespaces().Informer(),
		f.Core().V1().Nodes().Informer(), f.Networking().V1().NetworkPolicies().Informer()}
	w.pods, w.namespaces = f.Core().V1().Pods().Lister(), f.Core().V1().Namespaces().Lister()
	w.nodes, w.nps = f.Core().V1().Nodes().Lister(), f.Networking().V1().NetworkPolicies().Lister()
	var notes []string
	served, err := resourcesServed(kube, cnpv1.GroupVersion.String(), "clusternetworkpolicies")
	if err != nil {
		return nil, "", err
	}
	var cf cnpinformers.SharedInformerFactory
	if served {
		cf = cnpinformers.NewSharedInformerFactory(cnp, 10*time.Minute)
		infs = append(infs, cf.Policy().V1beta1().ClusterNetworkPolicies().Informer())
		w.cnps = cf.Policy().V1beta1().ClusterNetworkPolicies().Lister()
	} else {
		notes = append(notes, "the API server does not serve "+cnpv1.GroupVersion.String()+" clusternetworkpolicies: not enforcing ClusterNetworkPolicy")
	}
	df, calicoInfs, note, err := w.watchCalico(kube, dyn, f)
	if err != nil {
		return nil, "", err
	}
	infs = append(infs, calicoInfs...)
	if note != "" {
		notes = append(notes, note)
	}
	for _, inf := range infs {
		if _, err := inf.AddEventHandler(handler); err != nil {
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
	if cf != nil {
		cf.Start(ctx.Done())
		for typ, ok := range cf.WaitForCacheSync(sctx.Done()) {
			if !ok {
				return nil, "", fmt.Errorf("syncing the %v cache within %v (may the agent list and watch clusternetworkpolicies?)", typ, syncTimeout)
			}
		}
	}
	if df != nil {
		df.Start(ctx.Done())
		for gvr, ok := range df.WaitForCacheSync(sctx.Done()) {
			if !ok {
				return nil, "", fmt.Errorf("syncing the %v cache within %v (may the agent list and watch %s?)", gvr, syncTimeout, gvr.GroupResource())
			}
		}
	}
	return w, strings.Join(notes, "; "), nil
}

// watchCalico sets up the watches of Calico's policies and of the ServiceAccounts their
// selectors read, when the API server serves the policies; else it returns a note saying so.
func (w *Watch) watchCalico(kube kubernetes.Interface, dyn dynamic.Interface, f informers.SharedInformerFactory) (dynamicinformer.DynamicSharedInformerFactory, []cache.SharedIndexInformer, string, error) {
	served, err := resourcesServed(kube, calicov3.GroupVersion.String(), GlobalNetworkPolicies.Resource, CalicoNetworkPolicies.Resource)
	if err != nil || !served {
		return nil, nil, "the API server does not serve " + calicov3.GroupVersion.String() + " globalnetworkpolicies and networkpolicies: not enforcing Calico's policies", err
	}
	df := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 10*time.Minute)
	var infs []cache.SharedIndexInformer
	for _, r := range []struct {
		gvr    schema.GroupVersionResource
		lister *cache.GenericLister
	}{{GlobalNetworkPolicies, &w.gnps}, {CalicoNetworkPolicies, &w.calicoNPs}} {
		inf := df.ForResource(r.gvr)
		infs, *r.lister = append(infs, inf.Informer()), inf.Lister()
	}
	infs = append(infs, f.Core().V1().ServiceAccounts().Informer())
	w.sas = f.Core().V1().ServiceAccounts().Lister()
	return df, infs, "", nil
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
	if w.cnps != nil {
		if in.ClusterPolicies, err = w.cnps.List(labels.Everything()); err != nil {
			return in, err
		}
	}
	if w.sas != nil {
		if in.ServiceAccounts, err = w.sas.List(labels.Everything()); err != nil {
			return in, err
		}
		if in.GlobalNetworkPolicies, err = listTyped[calicov3.GlobalNetworkPolicy](w.gnps); err != nil {
			return in, err
		}
		if in.CalicoNetworkPolicies, err = listTyped[calicov3.NetworkPolicy](w.calicoNPs); err != nil {
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
