package agent

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podsg/podsg/internal/agentapi"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/testenv"
)

// TestSyncWithAnUnusableRecord: the agent restarts with a record it cannot read, whose pod
// still runs with IP X (the lowest of the primary ENI, the next ADD's pick if X were free).
// The next ADD gets another IP; once the pod is deleted or has finished, X is free again.
func TestSyncWithAnUnusableRecord(t *testing.T) {
	gone := map[string]func(t *testing.T, kube *fake.Clientset, pod *corev1.Pod) error{
		"deleted": func(t *testing.T, kube *fake.Clientset, pod *corev1.Pod) error {
			return kube.CoreV1().Pods(pod.Namespace).Delete(t.Context(), pod.Name, metav1.DeleteOptions{})
		},
		"succeeded": func(t *testing.T, kube *fake.Clientset, pod *corev1.Pod) error {
			pod = pod.DeepCopy()
			pod.Status.Phase = corev1.PodSucceeded
			_, err := kube.CoreV1().Pods(pod.Namespace).UpdateStatus(t.Context(), pod, metav1.UpdateOptions{})
			return err
		},
	}
	for name, goAway := range gone {
		t.Run(name, func(t *testing.T) { testSyncWithAnUnusableRecord(t, goAway) })
	}
}

func testSyncWithAnUnusableRecord(t *testing.T, goAway func(*testing.T, *fake.Clientset, *corev1.Pod) error) {
	w := newPoolWorld(t, "t3.small")
	held, store := unusableRecord(t, w)
	old := claimPod("old", corev1.PodRunning, false, held.IP.String())
	kube := fake.NewClientset(old)

	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel) // stops the watch
	pool := w.pool(t, w.ec2, "t3.small", 3, false)
	pods, err := newPodWatch(ctx, kube, "node-1", func(pod *corev1.Pod) { releaseClaim(ctx, pool, pod) })
	if err != nil {
		t.Fatal(err)
	}
	if err := syncPool(ctx, pool, store, pods); err != nil {
		t.Fatal(err)
	}
	web := claimPod("web", corev1.PodPending, false)
	a := &allocator{cfg: AllocConfig{Mode: podstate.ModeStrict, VethPrefix: "eni"}, store: store, pods: onePod{web}, pool: pool, fill: func() {}}
	rec, err := a.Add(t.Context(), agentapi.AddRequest{ContainerID: "c-web", IfName: "eth0", Netns: "/run/netns/x", PodNamespace: "default", PodName: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.IP == held.IP {
		t.Fatalf("ADD got %s, which the running pod %s whose record is unusable holds", rec.IP, old.Name)
	}

	if err := goAway(t, kube, old); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, func(context.Context) error {
		if st := pool.Stats(); st.Used != 1 {
			return fmt.Errorf("pool %+v, want only web's IP used", st)
		}
		return nil
	})
	if next, err := pool.Allocate("c-next_eth0"); err != nil || next.IP != held.IP {
		t.Errorf("Allocate after the pod went = %+v, %v; want %s", next, err, held.IP)
	}
}

// TestUnrecordedPodIPs: only pods that may hold their IPs claim them, and only IPs no readable
// record holds.
func TestUnrecordedPodIPs(t *testing.T) {
	recorded := map[netip.Addr]string{netip.MustParseAddr("10.0.0.9"): "c9_eth0"}
	tests := map[string]struct {
		pod  *corev1.Pod
		want map[netip.Addr]string
	}{
		"running":         {pod: claimPod("p", corev1.PodRunning, false, "10.0.0.5"), want: map[netip.Addr]string{netip.MustParseAddr("10.0.0.5"): "pod/uid-p"}},
		"pending":         {pod: claimPod("p", corev1.PodPending, false, "10.0.0.5"), want: map[netip.Addr]string{netip.MustParseAddr("10.0.0.5"): "pod/uid-p"}},
		"recorded":        {pod: claimPod("p", corev1.PodRunning, false, "10.0.0.9"), want: map[netip.Addr]string{}},
		"succeeded":       {pod: claimPod("p", corev1.PodSucceeded, false, "10.0.0.5"), want: map[netip.Addr]string{}},
		"failed":          {pod: claimPod("p", corev1.PodFailed, false, "10.0.0.5"), want: map[netip.Addr]string{}},
		"host network":    {pod: claimPod("p", corev1.PodRunning, true, "10.0.0.5"), want: map[netip.Addr]string{}},
		"no IP yet":       {pod: claimPod("p", corev1.PodPending, false), want: map[netip.Addr]string{}},
		"unparsable IP":   {pod: claimPod("p", corev1.PodRunning, false, "x"), want: map[netip.Addr]string{}},
		"dual stack pods": {pod: claimPod("p", corev1.PodRunning, false, "10.0.0.5", "fd00::5"), want: map[netip.Addr]string{netip.MustParseAddr("10.0.0.5"): "pod/uid-p", netip.MustParseAddr("fd00::5"): "pod/uid-p"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := unrecordedPodIPs([]*corev1.Pod{tc.pod}, recorded); !maps.Equal(got, tc.want) {
				t.Errorf("unrecordedPodIPs = %v, want %v", got, tc.want)
			}
		})
	}
}

// unusableRecord leases the lowest IP of a filled pool to container c-old, as a first run of
// the agent would, and leaves c-old a record that cannot be read.
func unusableRecord(t *testing.T, w *poolWorld) (Lease, *podstate.Store) {
	t.Helper()
	before := w.pool(t, w.ec2, "t3.small", 3, false)
	if err := before.Sync(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	if err := before.Fill(t.Context()); err != nil {
		t.Fatal(err)
	}
	held, err := before.Allocate("c-old_eth0")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := podstate.NewStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "c-old_eth0.json"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	return held, store
}

// claimPod is a pod of node-1 in the given phase reporting ips.
func claimPod(name string, phase corev1.PodPhase, hostNetwork bool, ips ...string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name)},
		Spec:   corev1.PodSpec{NodeName: "node-1", HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "app"}}},
		Status: corev1.PodStatus{Phase: phase}}
	for _, ip := range ips {
		pod.Status.PodIPs = append(pod.Status.PodIPs, corev1.PodIP{IP: ip})
	}
	return pod
}

// TestSyncWithAPodGoneDuringSync: a pod that goes after syncPool listed the pods, before Sync
// held its IP, has its watch event too early to release the claim; syncPool releases it.
func TestSyncWithAPodGoneDuringSync(t *testing.T) {
	w := newPoolWorld(t, "t3.small")
	held, store := unusableRecord(t, w)
	pool := w.pool(t, w.ec2, "t3.small", 3, false)
	pods := &listings{{claimPod("old", corev1.PodRunning, false, held.IP.String())}, nil}
	if err := syncPool(t.Context(), pool, store, pods); err != nil {
		t.Fatal(err)
	}
	if next, err := pool.Allocate("c-next_eth0"); err != nil || next.IP != held.IP {
		t.Errorf("Allocate after the pod went = %+v, %v; want %s", next, err, held.IP)
	}
}

// listings answers each List with the next list of pods.
type listings [][]*corev1.Pod

func (l *listings) List() ([]*corev1.Pod, error) {
	if len(*l) == 0 {
		return nil, fmt.Errorf("no more listings")
	}
	pods := (*l)[0]
	*l = (*l)[1:]
	return pods, nil
}
