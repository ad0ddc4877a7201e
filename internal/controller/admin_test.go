package controller_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
)

// TestAdminKubeconfig runs podsg-controller as a user trying it outside a cluster would: with
// an admin (system:masters) kubeconfig and no --controller-username. It must learn who it is
// and annotate a branch pod; its webhook must still deny that annotation to everyone else,
// other admins included.
func TestAdminKubeconfig(t *testing.T) {
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/podsg-controller")
	w := startWith(t, options{backend: backendVPC, noManager: true})
	prepareForProcess(t, w)
	p, err := testenv.StartProcess(t, bin, processArgs(t, w, w.vpc.URL)...)
	if err != nil {
		t.Fatal(err)
	}

	ns := controllertest.Namespace(t, w.c, "admin")
	controllertest.Create(t, w.c, w.policy(ns), controllertest.SeedServiceAccount(ns))
	controllertest.WaitForWebhook(t, w.c, ns)
	controllertest.Create(t, w.c, controllertest.Pod(ns, "backend", "rds-db-access"))
	w.addNode(t, "ip-10-0-0-50")
	var got []v1beta1.PodENI
	testenv.Eventually(t, time.Minute, func(context.Context) error {
		if err := p.ExitErr(); err != nil {
			return fmt.Errorf("podsg-controller exited: %w\n%s", err, p.LogTail())
		}
		pod := &corev1.Pod{}
		// The test's context, not the poll's: the last poll must report the pod, not the deadline.
		if err := w.c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "backend"}, pod); err != nil {
			return err
		}
		enis, ok, err := podENIs(pod)
		if err == nil && !ok {
			err = fmt.Errorf("pod not annotated; podsg-controller's log ends:\n%s", p.LogTail())
		}
		got = enis
		return err
	})
	if len(got) != 1 {
		t.Fatalf("want one branch ENI, got %+v", got)
	}

	// Another admin, and the envtest admin, still may not write what the controller writes.
	other := rest.CopyConfig(w.env.Config)
	other.Impersonate = rest.ImpersonationConfig{UserName: "another-admin", Groups: []string{"system:masters"}}
	asOther, err := client.New(other, client.Options{Scheme: w.env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	for user, c := range map[string]client.Client{"another-admin": asOther, "the envtest admin": w.c} {
		pod := &corev1.Pod{}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "backend"}, pod); err != nil {
			t.Fatal(err)
		}
		patch := client.RawPatch("application/merge-patch+json",
			fmt.Appendf(nil, `{"metadata":{"annotations":{%q:"[]"}}}`, v1beta1.AnnotationPodENI))
		if err := c.Patch(t.Context(), pod, patch); err == nil || !strings.Contains(err.Error(), "set by podsg-controller only") {
			t.Errorf("%s changing %s: want denial, got %v", user, v1beta1.AnnotationPodENI, err)
		}
	}
}
