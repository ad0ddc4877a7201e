//go:build awsrc

package sidebyside

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// world is one contender's surroundings: a fresh local VPC, a control plane with the real
// scheduler, the nodes, and the controller's current incarnation.
type world struct {
	sb    *sandbox
	env   *testenv.Env
	c     client.Client
	vpc   *localVPC
	nodes []string
	ctrl  contender
	proc  *testenv.Process
	// incarnations counts the controller's starts.
	incarnations int
	// usage sums the CPU and keeps the peak RSS of every incarnation that has ended.
	usage procUsage
}

// newWorld builds everything but the controller, which startController runs.
func newWorld(t testing.TB, ctrl contender, nodes int) *world {
	t.Helper()
	sb := newSandbox(t) // first: its cleanup, last, finds every relay closed
	vpc := startVPC(t, nodes)
	env := testenv.Start(t, testenv.Options{Scheduler: true, Webhooks: ctrl.webhooks(t)})
	for _, u := range []string{env.Config.Host, vpc.URL, vpc.IMDS} {
		sb.intoURL(t, u)
	}
	w := &world{sb: sb, env: env, c: env.Client, vpc: vpc, ctrl: ctrl}
	playKubelet(t, env)
	w.nodes = addNodes(t, w.c, vpc)
	ctrl.prepare(t, w)
	return w
}

// startController runs a new incarnation of the controller.
func (w *world) startController(t testing.TB) {
	t.Helper()
	p := w.ctrl.start(t, w)
	w.proc, w.incarnations = p, w.incarnations+1
	n := w.incarnations
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log (tail):\n%s", w.ctrl.name(), p.LogTail())
		}
		// The whole log, for a look at what a controller did; the test's own directory goes.
		if dir := os.Getenv("PODSG_COMPARE_LOGS"); dir != "" {
			name := filepath.Join(dir, fmt.Sprintf("%s-%d.log", strings.ReplaceAll(t.Name(), "/", "-"), n))
			if err := os.WriteFile(name, []byte(p.Log()), 0o644); err != nil {
				t.Error(err)
			}
		}
	})
}

// stopController ends the incarnation as a rolling update does (SIGTERM), after reading what
// it used from /proc.
func (w *world) stopController(t testing.TB) {
	t.Helper()
	u, err := readProcUsage(w.proc.Pid())
	if err != nil {
		t.Fatalf("%s: %v\n%s", w.ctrl.name(), err, w.proc.LogTail())
	}
	w.usage.add(u)
	if err := w.proc.Stop(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// waitNodesReady waits until the controller advertises branch capacity on every node: its
// trunks exist.
func (w *world) waitNodesReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	w.eventually(t, timeout, func(ctx context.Context) error {
		for _, name := range w.nodes {
			n := &corev1.Node{}
			if err := w.c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
				return err
			}
			if q := n.Status.Allocatable[v1beta1.ResourcePodENI]; q.Value() == 0 {
				return fmt.Errorf("node %s advertises no %s", name, v1beta1.ResourcePodENI)
			}
		}
		return nil
	})
}

// waitWebhook waits until the controller's mutating webhook asks a branch ENI for a pod its
// policy selects: both controllers' webhooks fail open, so a pod created earlier would get none.
func (w *world) waitWebhook(t testing.TB, ns string) {
	t.Helper()
	w.eventually(t, 2*time.Minute, func(ctx context.Context) error {
		p := pod(ns, "webhook-probe")
		if err := w.c.Create(ctx, p, client.DryRunAll); err != nil {
			return err
		}
		if _, ok := p.Spec.Containers[0].Resources.Requests[v1beta1.ResourcePodENI]; !ok {
			return fmt.Errorf("the mutating webhook does not ask for %s yet", v1beta1.ResourcePodENI)
		}
		return nil
	})
}

// eventually polls cond until it holds (testenv.Eventually), and gives up at once when the
// controller has exited: nothing it was waiting for can happen any more.
func (w *world) eventually(t testing.TB, timeout time.Duration, cond func(ctx context.Context) error) {
	t.Helper()
	testenv.Eventually(t, timeout, func(ctx context.Context) error {
		err := cond(ctx)
		if err != nil && w.proc != nil && w.proc.Exited() {
			return testenv.Abort(fmt.Errorf("%s exited (%w) while waiting: %w\n%s", w.ctrl.name(), w.proc.Err(), err, w.proc.LogTail()))
		}
		return err
	})
}

// every lets cond run at most once per d, answering its last result in between.
func every(d time.Duration, cond func(ctx context.Context) error) func(ctx context.Context) error {
	var last time.Time
	var err error
	return func(ctx context.Context) error {
		if time.Since(last) >= d {
			last, err = time.Now(), cond(ctx)
		}
		return err
	}
}

// The seed tutorial's ServiceAccount and policy: pods running as rds-db-access get both groups.
const serviceAccount = "rds-db-access"

func workloadNamespace(t testing.TB, w *world, ns string) {
	t.Helper()
	objs := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: serviceAccount, Labels: map[string]string{"role": "backend"}}},
		&v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "my-sg-policy"},
			Spec: v1beta1.SecurityGroupPolicySpec{
				ServiceAccountSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "backend"}},
				SecurityGroups:         v1beta1.GroupIDs{Groups: w.vpc.podGroups},
			}},
	}
	for _, o := range objs {
		if err := w.c.Create(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
}

// pod is a pod of the policy's ServiceAccount, small enough that only pod-eni limits a node.
func pod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "backend"}},
		Spec: corev1.PodSpec{
			ServiceAccountName:           serviceAccount,
			AutomountServiceAccountToken: new(false),
			Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1m")}}}},
		},
	}
}
