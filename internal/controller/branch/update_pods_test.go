package branch

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// TestUpdaterReadsPodsFromItsLister: a policy's change sends the annotated pods of its
// namespace, read from the lister ReadPodsFrom gives (podsg-controller's cache indexer), not
// through a client List, which builds a PodList of every pod of the namespace; without
// ReadPodsFrom, through the client.
func TestUpdaterReadsPodsFromItsLister(t *testing.T) {
	pod := func(ns, name string, annotated bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if annotated {
			p.Annotations = map[string]string{v1beta1.AnnotationPodENI: `[{"eniId":"eni-1"}]`}
		}
		return p
	}
	pods := []*corev1.Pod{pod("a", "sg-1", true), pod("a", "plain", false), pod("a", "sg-2", true), pod("b", "sg-3", true)}
	policy := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "p"}}
	want := []types.NamespacedName{{Namespace: "a", Name: "sg-1"}, {Namespace: "a", Name: "sg-2"}}
	lister := func(_ context.Context, ns string) ([]*corev1.Pod, error) {
		return slices.DeleteFunc(slices.Clone(pods), func(p *corev1.Pod) bool { return p.Namespace != ns }), nil
	}
	objs := make([]client.Object, len(pods))
	for i, p := range pods {
		objs[i] = p.DeepCopy()
	}
	build := func() *crfake.ClientBuilder {
		return crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(objs...)
	}
	refusing := build().WithInterceptorFuncs(interceptor.Funcs{
		List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
			return errors.New("listed through the client")
		}}).Build()
	tests := map[string]*Updater{
		"the lister given":         NewUpdater(refusing, nil, nil, nil).ReadPodsFrom(lister),
		"the client's, by default": NewUpdater(build().Build(), nil, nil, nil),
	}
	for name, u := range tests {
		t.Run(name, func(t *testing.T) {
			var got []types.NamespacedName
			for _, r := range u.annotatedPods(t.Context(), policy) {
				got = append(got, r.NamespacedName)
			}
			slices.SortFunc(got, func(x, y types.NamespacedName) int { return strings.Compare(x.Name, y.Name) })
			if !slices.Equal(got, want) {
				t.Fatalf("requests %v, want %v", got, want)
			}
		})
	}
}
