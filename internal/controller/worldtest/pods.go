package worldtest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/policy"
)

// Namespace is where the world's pods live.
const Namespace = "default"

// AddPod creates a pod bound to nodeName that admission gave Groups, and reconciles it: it has
// its branch ENI, whose id AddPod returns.
func (w *World) AddPod(name, nodeName string) (*corev1.Pod, string) {
	w.t.Helper()
	w.NewPod(name, nodeName)
	w.ReconcilePod(name)
	return w.Pod(name), w.Annotated(name).ENIID
}

// AddPodName is AddPod returning the pod's name, for chaining.
func (w *World) AddPodName(name, nodeName string) string {
	w.t.Helper()
	w.AddPod(name, nodeName)
	return name
}

// NewPod creates a pod bound to nodeName as admission leaves it when a policy selects it (the
// webhook's mark, Groups in the annotation), without reconciling.
func (w *World) NewPod(name, nodeName string) *corev1.Pod {
	w.t.Helper()
	return w.NewPodWithGroups(name, nodeName, Groups)
}

// NewPodWithGroups is NewPod for a pod admission gave groups.
func (w *World) NewPodWithGroups(name, nodeName string, groups []string) *corev1.Pod {
	w.t.Helper()
	p := w.pod(name, nodeName)
	policy.RequestBranchENI(p)
	p.Annotations = map[string]string{v1beta1.AnnotationSecurityGroups: policy.JoinGroups(groups)}
	return w.CreatePod(p)
}

// Annotated returns the one branch ENI a pod is annotated with, failing the test otherwise.
func (w *World) Annotated(name string) v1beta1.PodENI {
	w.t.Helper()
	p := w.Pod(name)
	enis, err := v1beta1.ParsePodENIs(p.Annotations[v1beta1.AnnotationPodENI])
	if err != nil || len(enis) != 1 {
		w.t.Fatalf("pod %s: annotation %q (%v), want one ENI", name, p.Annotations[v1beta1.AnnotationPodENI], err)
	}
	return enis[0]
}

// PlainPod returns a pod bound to nodeName with one container and nothing from admission,
// for the test to shape and pass to CreatePod.
func (w *World) PlainPod(name, nodeName string) *corev1.Pod { return w.pod(name, nodeName) }

func (w *World) pod(name, nodeName string) *corev1.Pod {
	w.podsMade++ // pods of the same name have different UIDs, as in the apiserver
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: Namespace, Name: name, UID: types.UID(fmt.Sprintf("uid-%s-%d", name, w.podsMade))},
		Spec:       corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "app", Image: "pause"}}},
	}
}

// CreatePod creates p.
func (w *World) CreatePod(p *corev1.Pod) *corev1.Pod {
	w.t.Helper()
	if err := w.Kube.Create(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// Pod reads a pod from the apiserver.
func (w *World) Pod(name string) *corev1.Pod {
	w.t.Helper()
	p := &corev1.Pod{}
	if err := w.Kube.Get(w.t.Context(), types.NamespacedName{Namespace: Namespace, Name: name}, p); err != nil {
		w.t.Fatalf("getting pod %s: %v", name, err)
	}
	return p
}

// PodGone reports whether the pod is gone from the apiserver.
func (w *World) PodGone(name string) bool {
	w.t.Helper()
	err := w.Kube.Get(w.t.Context(), types.NamespacedName{Namespace: Namespace, Name: name}, &corev1.Pod{})
	if client.IgnoreNotFound(err) != nil {
		w.t.Fatal(err)
	}
	return err != nil
}

// ReconcilePod runs the branch controller once for a pod, failing the test on error.
func (w *World) ReconcilePod(name string) reconcile.Result {
	w.t.Helper()
	res, err := w.TryReconcilePod(name)
	if err != nil {
		w.t.Fatalf("reconciling pod %s: %v", name, err)
	}
	return res
}

// TryReconcilePod runs the branch controller once for a pod.
func (w *World) TryReconcilePod(name string) (reconcile.Result, error) {
	return w.Pods.Reconcile(w.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: Namespace, Name: name}})
}

// UpdateGroups runs the groups updater once for a pod, failing the test on error.
func (w *World) UpdateGroups(name string) reconcile.Result {
	w.t.Helper()
	res, err := w.Updater.Reconcile(w.t.Context(), reconcile.Request{NamespacedName: types.NamespacedName{Namespace: Namespace, Name: name}})
	if err != nil {
		w.t.Fatalf("updating the groups of pod %s: %v", name, err)
	}
	return res
}

// SetPhase writes a pod's phase, as the kubelet does.
func (w *World) SetPhase(name string, phase corev1.PodPhase) {
	w.t.Helper()
	p := w.Pod(name)
	p.Status.Phase = phase
	if err := w.Kube.Status().Update(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
}

// DeletePod deletes a pod as the kubelet does once its containers are gone (grace period 0):
// the branch controller, if it ever reconciles the pod, releases its ENI and then the
// finalizer.
func (w *World) DeletePod(name string) { w.DeletePodWithGrace(name, 0) }

// DeletePodWithGrace deletes a pod as the apiserver does: with no finalizer and no grace period
// left it is gone; otherwise it gets a deletionTimestamp and this deletionGracePeriodSeconds
// (a running pod's kubelet then stops its containers, and deletes it again with 0).
func (w *World) DeletePodWithGrace(name string, grace int64) {
	w.t.Helper()
	p := w.Pod(name)
	if len(p.Finalizers) == 0 && grace == 0 {
		if err := w.Kube.Delete(w.t.Context(), p); err != nil {
			w.t.Fatal(err)
		}
		return
	}
	if p.DeletionTimestamp == nil {
		now := metav1.NewTime(w.Clock.Now())
		p.DeletionTimestamp = &now
	}
	p.DeletionGracePeriodSeconds = &grace
	if err := w.tracker.Update(schema.GroupVersionResource{Version: "v1", Resource: "pods"}, p, p.Namespace); err != nil {
		w.t.Fatalf("deleting pod %s: %v", name, err)
	}
}

// LosePod makes a pod vanish without the branch controller's knowledge: deleted while
// podsg-controller was down, its finalizer removed by someone else.
func (w *World) LosePod(name string) {
	w.t.Helper()
	p := w.Pod(name)
	p.Finalizers = nil
	if err := w.Kube.Update(w.t.Context(), p); err != nil {
		w.t.Fatal(err)
	}
	w.DeletePod(name)
}

// BranchOf returns the branch ENI EC2 holds for a pod, by its UID tag.
func (w *World) BranchOf(p *corev1.Pod) (cloud.NetworkInterface, bool) {
	for _, e := range w.EC2.NetworkInterfaces(cloud.InterfaceTypeBranch) {
		if e.Tags[cloud.TagPodUID] == string(p.UID) {
			return e, true
		}
	}
	return cloud.NetworkInterface{}, false
}
