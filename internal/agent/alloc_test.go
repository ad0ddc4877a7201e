package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podsg/podsg/internal/agentapi"
	"github.com/podsg/podsg/internal/podstate"
)

// onePod is Pods with a single regular pod that never changes.
type onePod struct{ pod *corev1.Pod }

func (p onePod) Get(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	if namespace != p.pod.Namespace || name != p.pod.Name {
		return nil, errors.New("no such pod")
	}
	return p.pod, nil
}

func (onePod) Changed() <-chan struct{} { return make(chan struct{}) }

// TestAllocatorWithAnUnusableRecord: a record the agent cannot read blocks neither ADD nor DEL
// of its container. ADD sets it aside and records the container again, with the IP the pool
// had leased to it; DEL sets it aside and gives that IP back, known by the container alone;
// a second DEL finds nothing and succeeds.
func TestAllocatorWithAnUnusableRecord(t *testing.T) {
	w := newPoolWorld(t, "t3.small")
	pool := w.pool(t, w.ec2, "t3.small", 3, false)
	if err := pool.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := podstate.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: types.UID("u-1")},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	a := &allocator{cfg: AllocConfig{Mode: podstate.ModeStrict, VethPrefix: "eni"}, store: store, pods: onePod{pod}, pool: pool, fill: func() {}}
	add := agentapi.AddRequest{ContainerID: "c1", IfName: "eth0", Netns: "/run/netns/x", PodNamespace: "default", PodName: "web"}
	del := agentapi.DelRequest{ContainerID: "c1", IfName: "eth0"}
	path := filepath.Join(dir, "c1_eth0.json")
	corrupt := func() {
		t.Helper()
		if err := os.WriteFile(path, []byte("{garbage"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	first, err := a.Add(t.Context(), add)
	if err != nil {
		t.Fatal(err)
	}
	corrupt()
	again, err := a.Add(t.Context(), add)
	if err != nil {
		t.Fatalf("ADD with an unusable record: %v", err)
	}
	if again.IP != first.IP {
		t.Errorf("ADD after the record broke got %s, want the container's lease %s", again.IP, first.IP)
	}
	if got, err := store.Get("c1", "eth0"); err != nil || got.IP != first.IP {
		t.Errorf("record after ADD = %+v, %v; want a readable one with %s", got, err, first.IP)
	}
	expectSetAside(t, dir, 1)

	corrupt()
	if err := a.Del(t.Context(), del); err != nil {
		t.Fatalf("DEL with an unusable record: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("record path after DEL: %v, want it free", err)
	}
	expectSetAside(t, dir, 2)
	if st := pool.Stats(); st.Used != 0 {
		t.Errorf("pool after DEL: %+v, want the container's IP released", st)
	}
	if err := a.Del(t.Context(), del); err != nil {
		t.Fatalf("second DEL: %v", err)
	}
}

// expectSetAside checks that dir holds n set-aside records, each with the bytes written.
func expectSetAside(t *testing.T, dir string, n int) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "c1_eth0.json.corrupt-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) != n {
		t.Fatalf("set-aside records %v, want %d", matches, n)
	}
	for _, m := range matches {
		if data, err := os.ReadFile(m); err != nil || !strings.HasPrefix(string(data), "{garbage") {
			t.Errorf("%s holds %q (%v), want the unusable record", m, data, err)
		}
	}
}
