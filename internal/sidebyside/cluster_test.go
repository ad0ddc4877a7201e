//go:build awsrc

package sidebyside

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// nodeName is the name EKS gives an instance's node: its private DNS name.
func nodeName(privateIP string) string {
	return "ip-" + strings.ReplaceAll(privateIP, ".", "-") + "." + region + ".compute.internal"
}

// addNodes registers one Node per instance, as a kubelet would: Linux, the instance as its
// provider id, asking for a trunk (the label both controllers read), schedulable and Ready.
func addNodes(t testing.TB, c client.Client, v *localVPC) []string {
	t.Helper()
	var names []string
	for _, inst := range v.nodes {
		name := nodeName(*inst.PrivateIpAddress)
		n := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
				corev1.LabelOSStable: "linux", corev1.LabelHostname: name, corev1.LabelInstanceTypeStable: nodeType,
				corev1.LabelTopologyZone: zone, v1beta1.LabelHasTrunkAttached: "false"}},
			Spec: corev1.NodeSpec{ProviderID: fmt.Sprintf("aws:///%s/%s", zone, *inst.InstanceId)},
		}
		if err := c.Create(t.Context(), n); err != nil {
			t.Fatal(err)
		}
		// The apiserver taints new nodes not-ready; the kubelet's first status clears it.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(n), n); err != nil {
				return err
			}
			n.Spec.Taints = nil
			return c.Update(t.Context(), n)
		})
		if err != nil {
			t.Fatal(err)
		}
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := c.Get(t.Context(), client.ObjectKeyFromObject(n), n); err != nil {
				return err
			}
			n.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"),
				corev1.ResourceMemory: resource.MustParse("64Gi"), corev1.ResourcePods: resource.MustParse("234")}
			n.Status.Allocatable = n.Status.Capacity.DeepCopy()
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}}
			n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: *inst.PrivateIpAddress}}
			return c.Status().Update(t.Context(), n)
		})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
}

// playKubelet does for every node the one thing of a kubelet's status sync that matters here:
// an extended resource a controller wrote into the node's capacity becomes allocatable, which is
// what the scheduler reads. AWS's controller patches capacity only and relies on the kubelet;
// podsg-controller writes both, so this changes nothing for it. A real kubelet does it at its
// next status update (every 10 s by default); this does it as soon as the watch tells, which
// favours AWS's controller, if anything.
func playKubelet(t testing.TB, env *testenv.Env) {
	t.Helper()
	wc, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			w, err := wc.Watch(ctx, &corev1.NodeList{})
			if err != nil {
				continue
			}
			for ev := range w.ResultChan() {
				if n, ok := ev.Object.(*corev1.Node); ok && ev.Type != watch.Deleted {
					syncAllocatable(ctx, env.Client, n.Name)
				}
			}
			w.Stop()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// syncAllocatable copies the node's pod-eni capacity into its allocatable when they differ.
func syncAllocatable(ctx context.Context, c client.Client, name string) {
	_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := &corev1.Node{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
			return err
		}
		want, ok := n.Status.Capacity[v1beta1.ResourcePodENI]
		if have := n.Status.Allocatable[v1beta1.ResourcePodENI]; !ok || have.Equal(want) {
			return nil
		}
		n.Status.Allocatable[v1beta1.ResourcePodENI] = want
		return c.Status().Update(ctx, n)
	})
}
