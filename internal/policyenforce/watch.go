package policyenforce

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	netlisters "k8s.io/client-go/listers/networking/v1"
	"k8s.io/client-go/tools/cache"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
	cnpclient "sigs.k8s.io/network-policy-api/pkg/client/clientset/versioned"
	cnpinformers "sigs.k8s.io/network-policy-api/pkg/client/informers/externalversions"
	cnplisters "sigs.k8s.io/network-policy-api/pkg/client/listers/apis/v1beta1"
)

// Watch is the Source of the API server's watches: pods of every node, namespaces, nodes,
// NetworkPolicies and, when the API server serves them, ClusterNetworkPolicies.
type Watch struct {
	pods       corelisters.PodLister
	namespaces corelisters.NamespaceLister
	nodes      corelisters.NodeLister
	nps        netlisters.NetworkPolicyLister
	cnps       cnplisters.ClusterNetworkPolicyLister // nil when not served

	mu      sync.Mutex
	changed chan struct{}
}

// StartWatch starts the watches and returns once their caches have synced. Without the
// ClusterNetworkPolicy CRD (policy.networking.k8s.io/v1beta1) the agent enforces
// NetworkPolicy alone, and says so in the returned note.
func StartWatch(ctx context.Context, kube kubernetes.Interface, cnp cnpclient.Interface) (*Watch, string, error) {
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
	note := ""
	served, err := cnpServed(kube)
	if err != nil {
		return nil, "", err
	}
	var cf cnpinformers.SharedInformerFactory
	if served {
		cf = cnpinformers.NewSharedInformerFactory(cnp, 10*time.Minute)
		infs = append(infs, cf.Policy().V1beta1().ClusterNetworkPolicies().Informer())
		w.cnps = cf.Policy().V1beta1().ClusterNetworkPolicies().Lister()
	} else {
		note = "the API server does not serve " + cnpv1.GroupVersion.String() + " clusternetworkpolicies: enforcing NetworkPolicy only"
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
	return w, note, nil
}

// syncTimeout bounds the first sync of the watches.
const syncTimeout = 2 * time.Minute

func cnpServed(kube kubernetes.Interface) (bool, error) {
	list, err := kube.Discovery().ServerResourcesForGroupVersion(cnpv1.GroupVersion.String())
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("asking the API server whether it serves %s: %w", cnpv1.GroupVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Name == "clusternetworkpolicies" {
			return true, nil
		}
	}
	return false, nil
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
	return in, nil
}

var (
	_ Source = (*Watch)(nil)
)

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
