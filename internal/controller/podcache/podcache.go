// Package podcache reads podsg-controller's cached pods without copying them. The controllers
// that look at every pod of a namespace, or of the cluster (the policy status, the network
// policy check), do it every second or two while pods change: a client List, even without
// deep copies, builds a PodList holding a copy of each pod's struct, 250 MB for 100,000 pods
// at every call, which the garbage collector then has to find room for twice over.
package podcache

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Lister returns the pods of a namespace ("": every namespace). The pods are shared: callers
// read them and never change them.
type Lister func(ctx context.Context, namespace string) ([]*corev1.Pod, error)

// FromCache lists from the indexer of c's pod informer: pointers to the cached pods, by the
// namespace index the cache keeps.
func FromCache(ctx context.Context, c cache.Cache) (Lister, error) {
	inf, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("getting the pod informer: %w", err)
	}
	indexed, ok := inf.(interface{ GetIndexer() toolscache.Indexer })
	if !ok {
		return nil, fmt.Errorf("the pod informer %T has no indexer", inf)
	}
	idx := indexed.GetIndexer()
	return func(_ context.Context, namespace string) ([]*corev1.Pod, error) {
		var objs []any
		if namespace == "" {
			objs = idx.List()
		} else {
			var err error
			if objs, err = idx.ByIndex(toolscache.NamespaceIndex, namespace); err != nil {
				return nil, fmt.Errorf("listing the cached pods of %s: %w", namespace, err)
			}
		}
		return pods(objs), nil
	}, nil
}

func pods(objs []any) []*corev1.Pod {
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out
}

// FromClient lists through r, without deep copies: for readers that are not the manager's
// cache (the fake clients of unit tests).
func FromClient(r client.Reader) Lister {
	return func(ctx context.Context, namespace string) ([]*corev1.Pod, error) {
		var list corev1.PodList
		opts := []client.ListOption{client.UnsafeDisableDeepCopy}
		if namespace != "" {
			opts = append(opts, client.InNamespace(namespace))
		}
		if err := r.List(ctx, &list, opts...); err != nil {
			return nil, fmt.Errorf("listing pods: %w", err)
		}
		out := make([]*corev1.Pod, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out, nil
	}
}
