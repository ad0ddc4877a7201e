package branch

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
)

// TestPendingFirst: of the pods of the informer's first list, which For puts at low
// priority, those bound and waiting for a branch go at normal priority, the rest stay low;
// later events are For's alone.
func TestPendingFirst(t *testing.T) {
	pod := func(edit func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Annotations: map[string]string{}},
			Spec: corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("1")}}}}}}
		if edit != nil {
			edit(p)
		}
		return p
	}
	tests := map[string]struct {
		pod         *corev1.Pod
		initialList bool
		want        int // priority the pod is handed out at
	}{
		"pending, first list":   {pod(nil), true, 0},
		"pending, later create": {pod(nil), false, handler.LowPriority},
		"served":                {pod(func(p *corev1.Pod) { p.Annotations[v1beta1.AnnotationPodENI] = "[]" }), true, handler.LowPriority},
		"not bound":             {pod(func(p *corev1.Pod) { p.Spec.NodeName = "" }), true, handler.LowPriority},
		"no branch asked":       {pod(func(p *corev1.Pod) { p.Spec.Containers[0].Resources = corev1.ResourceRequirements{} }), true, handler.LowPriority},
		"being deleted":         {pod(func(p *corev1.Pod) { p.DeletionTimestamp = new(metav1.Now()) }), true, handler.LowPriority},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			q := priorityqueue.New[reconcile.Request]("test")
			defer q.ShutDown()
			req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "p"}}
			// As For's handler adds a pod of the first list (the test's own, for every case).
			q.AddWithOpts(priorityqueue.AddOpts{Priority: new(handler.LowPriority)}, req)
			pendingFirst(t.Context(), event.CreateEvent{Object: tc.pod, IsInInitialList: tc.initialList}, q)
			if n := q.Len(); n != 1 {
				t.Fatalf("%d items queued, want the pod once", n)
			}
			got, priority, _ := q.GetWithPriority()
			if got != req || priority != tc.want {
				t.Fatalf("handed out %v at priority %d, want %v at %d", got, priority, req, tc.want)
			}
		})
	}
}

// TestTrunkReadySendsTheNodesWaitingPods: TrunkReady sends the pods recorded as waiting for
// that node's trunk, once, and no other; a pod that stopped waiting (served, or gone) is not
// sent.
func TestTrunkReadySendsTheNodesWaitingPods(t *testing.T) {
	c := New(nil, nil, nil, nil, clock.RealClock{}, Options{})
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }
	c.wait(key("a"), "n1")
	c.wait(key("b"), "n1")
	c.wait(key("c"), "n2")
	c.wait(key("gone"), "n1")
	c.wait(key("gone"), "")
	sent := func() []string {
		var names []string
		for {
			select {
			case ev := <-c.ready:
				names = append(names, ev.Object.GetNamespace()+"/"+ev.Object.GetName())
			default:
				slices.Sort(names)
				return names
			}
		}
	}
	c.TrunkReady("n1")
	if got, want := sent(), []string{"ns/a", "ns/b"}; !slices.Equal(got, want) {
		t.Fatalf("n1's trunk ready: sent %v, want %v", got, want)
	}
	c.TrunkReady("n1")
	if got := sent(); len(got) != 0 {
		t.Fatalf("n1's trunk ready again: sent %v, want none (they were sent)", got)
	}
	c.TrunkReady("n2")
	if got, want := sent(), []string{"ns/c"}; !slices.Equal(got, want) {
		t.Fatalf("n2's trunk ready: sent %v, want %v", got, want)
	}
}
