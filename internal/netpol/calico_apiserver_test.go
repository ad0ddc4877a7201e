package netpol_test

import (
	"os"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ktypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/testenv"
)

// TestSeedCalicoPoliciesApply applies the seed's Calico manifests unchanged with kubectl
// against a real apiserver serving podsg's CRDs, reads them back, and checks that nothing was
// pruned or changed on the way and that the layer accepts what the apiserver stored.
func TestSeedCalicoPoliciesApply(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()
	seed, err := os.ReadFile("testdata/seed-003-calico.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := env.Kubectl(ctx, "", "apply", "-f", "testdata/seed-003-calico.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"globalnetworkpolicy.projectcalico.org/default-deny created",
		"globalnetworkpolicy.projectcalico.org/allow-dns-egress created", "networkpolicy.projectcalico.org/netpol-sa-demo created"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl apply said %q, lacks %q", out, want)
		}
	}
	// kubectl's own view, by the short names the CRDs declare.
	if out, err := env.Kubectl(ctx, "", "get", "gnp", "-o", "name"); err != nil || out != "globalnetworkpolicy.projectcalico.org/allow-dns-egress\nglobalnetworkpolicy.projectcalico.org/default-deny\n" {
		t.Errorf("kubectl get gnp: %q, %v", out, err)
	}

	scheme := testenv.NewScheme()
	if err := calicov3.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := crclient.New(env.Config, crclient.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	var gnps calicov3.GlobalNetworkPolicyList
	var cnps calicov3.NetworkPolicyList
	if err := c.List(ctx, &gnps); err != nil {
		t.Fatal(err)
	}
	if err := c.List(ctx, &cnps, crclient.InNamespace("default")); err != nil {
		t.Fatal(err)
	}
	wantG, wantN := calicoPolicies(t, strings.TrimPrefix(string(seed), "\n"))
	if len(gnps.Items) != len(wantG) || len(cnps.Items) != len(wantN) {
		t.Fatalf("stored %d GlobalNetworkPolicies and %d NetworkPolicies, want %d and %d", len(gnps.Items), len(cnps.Items), len(wantG), len(wantN))
	}
	for _, w := range wantG {
		var got calicov3.GlobalNetworkPolicy
		if err := c.Get(ctx, ktypes.NamespacedName{Name: w.Name}, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Spec, w.Spec) {
			t.Errorf("GlobalNetworkPolicy %s stored as %+v, applied %+v", w.Name, got.Spec, w.Spec)
		}
	}
	if !reflect.DeepEqual(cnps.Items[0].Spec, wantN[0].Spec) {
		t.Errorf("NetworkPolicy netpol-sa-demo stored as %+v, applied %+v", cnps.Items[0].Spec, wantN[0].Spec)
	}
	if _, err := netpol.NewCalicoTier(gnps.Items, cnps.Items, nil); err != nil {
		t.Errorf("the layer refuses what the apiserver stored: %v", err)
	}

	// The CRD's schema refuses what Calico's API refuses: an unknown action.
	bad := "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: bad}\nspec:\n  ingress: [{action: Drop}]\n"
	if _, err := env.Kubectl(ctx, bad, "apply", "-f", "-"); err == nil || !strings.Contains(err.Error(), "Unsupported value: \"Drop\"") {
		t.Errorf("applying action Drop: %v, want the schema's refusal", err)
	}
}

// TestSeedServiceAccountRBAC is the seed's RBAC step: its ServiceAccount, Role and
// RoleBinding applied unchanged; a user of readonly-sa-group may read my-sa but not relabel it
// (which would move it in or out of netpol-sa-demo's serviceAccounts selector).
func TestSeedServiceAccountRBAC(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx := t.Context()
	if _, err := env.Kubectl(ctx, "", "apply", "-f", "testdata/seed-003-rbac.yaml"); err != nil {
		t.Fatal(err)
	}
	as := []string{"--as", "jane", "--as-group", "readonly-sa-group", "-n", "default"}
	// The binding works: the group may read the account (so the refusals below are RBAC's
	// answer to relabelling, not to a user with no access at all).
	if out, err := env.Kubectl(ctx, "", append(as, "get", "serviceaccount", "my-sa", "-o", "name")...); err != nil || out != "serviceaccount/my-sa\n" {
		t.Fatalf("reading my-sa as readonly-sa-group: %q, %v", out, err)
	}
	_, err := env.Kubectl(ctx, "", append(as, "label", "serviceaccount", "my-sa", "name=not-my-sa", "--overwrite")...)
	if err == nil || !strings.Contains(err.Error(), "Forbidden") || !strings.Contains(err.Error(), `cannot patch resource "serviceaccounts"`) {
		t.Errorf("relabelling my-sa with kubectl as readonly-sa-group: %v, want Forbidden", err)
	}

	// The same with client-go's impersonation, as a program would patch it.
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "jane", Groups: []string{"readonly-sa-group"}}
	c, err := crclient.New(cfg, crclient.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	patch := crclient.RawPatch(ktypes.MergePatchType, []byte(`{"metadata":{"labels":{"name":"not-my-sa"}}}`))
	sa := &corev1.ServiceAccount{}
	sa.Namespace, sa.Name = "default", "my-sa"
	if err := c.Patch(ctx, sa, patch); !apierrors.IsForbidden(err) {
		t.Errorf("patching my-sa's labels as readonly-sa-group: %v, want Forbidden", err)
	}
	if err := c.Delete(ctx, sa); !apierrors.IsForbidden(err) {
		t.Errorf("deleting my-sa as readonly-sa-group: %v, want Forbidden", err)
	}
	got := &corev1.ServiceAccount{}
	if err := env.Client.Get(ctx, ktypes.NamespacedName{Namespace: "default", Name: "my-sa"}, got); err != nil || got.Labels["name"] != "my-sa" {
		t.Errorf("my-sa after the attempts: labels %v, %v; want name=my-sa", got.Labels, err)
	}
}
