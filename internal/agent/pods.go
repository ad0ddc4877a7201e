package agent

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/podsg/podsg/internal/policy"
)

// Pods is what the agent knows of the pods of its node.
type Pods interface {
	// Get returns the pod, from the watch cache or, on a miss, from the API server.
	Get(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	// Changed returns a channel closed at the next change to any pod of the node.
	Changed() <-chan struct{}
}

// podWatch watches the pods of one node. A branch pod's ADD waits on Changed for the
// controller's annotation instead of polling the API server.
type podWatch struct {
	client kubernetes.Interface
	lister listersv1.PodLister

	mu      sync.Mutex
	changed chan struct{}
}

// newPodWatch starts watching; gone is called with each pod that is deleted or turns terminal.
func newPodWatch(ctx context.Context, client kubernetes.Interface, nodeName string, gone func(*corev1.Pod)) (*podWatch, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
		}))
	inf := factory.Core().V1().Pods()
	w := &podWatch{client: client, lister: inf.Lister(), changed: make(chan struct{})}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { w.notify() },
		UpdateFunc: func(_, n any) {
			if pod, ok := n.(*corev1.Pod); ok && policy.Terminal(pod) {
				gone(pod)
			}
			w.notify()
		},
		DeleteFunc: func(o any) {
			if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
				o = d.Obj
			}
			if pod, ok := o.(*corev1.Pod); ok {
				gone(pod)
			}
			w.notify()
		},
	}); err != nil {
		return nil, fmt.Errorf("watching pods: %w", err)
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return nil, fmt.Errorf("syncing the %v cache of node %s", typ, nodeName)
		}
	}
	return w, nil
}

func (w *podWatch) notify() {
	w.mu.Lock()
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

func (w *podWatch) Changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.changed
}

// List returns the node's pods in the watch cache.
func (w *podWatch) List() ([]*corev1.Pod, error) { return w.lister.List(labels.Everything()) }

func (w *podWatch) Get(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	pod, err := w.lister.Pods(namespace).Get(name)
	if err == nil {
		return pod, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	// The kubelet can run a pod before our watch has seen it: ask the API server.
	return w.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}
