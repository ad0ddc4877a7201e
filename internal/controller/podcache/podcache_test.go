package podcache

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/podsg/podsg/internal/testenv"
)

// TestListers: the client's lister and the indexer reads FromCache makes give a namespace's
// pods, or every pod for "", the latter the indexer's own objects, not copies. FromCache
// itself runs in every controller test on a real apiserver: Setup fails without it.
func TestListers(t *testing.T) {
	objs := []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "one"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "two"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "three"}},
	}
	kube := crfake.NewClientBuilder().WithScheme(testenv.NewScheme()).WithObjects(objs[0], objs[1], objs[2]).Build()
	idx := toolscache.NewIndexer(toolscache.MetaNamespaceKeyFunc, toolscache.Indexers{toolscache.NamespaceIndex: toolscache.MetaNamespaceIndexFunc})
	for _, p := range objs {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	fromIndex := func(ns string) []*corev1.Pod { // FromCache's lister, on an indexer of our own
		if ns == "" {
			return pods(idx.List())
		}
		o, err := idx.ByIndex(toolscache.NamespaceIndex, ns)
		if err != nil {
			t.Fatal(err)
		}
		return pods(o)
	}
	for ns, want := range map[string][]string{"a": {"one", "two"}, "b": {"three"}, "": {"one", "three", "two"}, "c": nil} {
		got, err := FromClient(kube)(t.Context(), ns)
		if err != nil {
			t.Fatal(err)
		}
		for name, list := range map[string][]*corev1.Pod{"client": got, "indexer": fromIndex(ns)} {
			var names []string
			for _, p := range list {
				names = append(names, p.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, want) {
				t.Errorf("%s, namespace %q: %v, want %v", name, ns, names, want)
			}
		}
	}
	if got := fromIndex("b"); len(got) != 1 || got[0] != objs[2] {
		t.Errorf("the indexer's lister copied the pod")
	}
}
