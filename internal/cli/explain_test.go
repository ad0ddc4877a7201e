package cli

import (
	"bytes"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func TestPodKey(t *testing.T) {
	tests := map[string]struct {
		arg, defaultNS string
		want           types.NamespacedName
		wantErr        bool
	}{
		"namespace/name":      {"shop/api", "default", types.NamespacedName{Namespace: "shop", Name: "api"}, false},
		"name in the context": {"api", "team", types.NamespacedName{Namespace: "team", Name: "api"}, false},
		"empty name":          {"shop/", "default", types.NamespacedName{}, true},
		"empty namespace":     {"/api", "default", types.NamespacedName{}, true},
		"too many parts":      {"a/b/c", "default", types.NamespacedName{}, true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := podKey(tc.arg, tc.defaultNS)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("podKey(%q, %q) = %v, %v; want %v, error %v", tc.arg, tc.defaultNS, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestExplainCommand runs `podsg explain pod` as a user would: a kubeconfig file, a bare pod
// name resolved in the context's namespace, and the local VPC's endpoint for EC2.
func TestExplainCommand(t *testing.T) {
	// Credentials from the environment, so that the SDK's chain does not probe instance metadata.
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	env := testenv.Start(t, testenv.Options{})
	vpc := vpctest.Start(t, vpctest.Options{})
	controllertest.Create(t, env.Client, controllertest.Pod("default", "lonely", ""))

	var out, errOut bytes.Buffer
	args := []string{"explain", "pod", "lonely", "--kubeconfig", env.Kubeconfig, "--ec2-endpoint", vpc.URL, "--region", vpctest.Region}
	if code := Run(t.Context(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut.String())
	}
	for _, l := range []string{
		"Pod default/lonely\n  node:             not scheduled\n",
		"  webhook:          not registered: no pod is matched against policies",
		"SecurityGroupPolicies in default\n  none\n",
		"EC2\n  branch ENIs: none for this pod\n",
		"  - No SecurityGroupPolicy exists in namespace default",
	} {
		if !strings.Contains(out.String(), l) {
			t.Errorf("output lacks %q:\n%s", l, out.String())
		}
	}

	if !strings.Contains(out.String(), "Network policies selecting the pod (in the order they apply):\n  none: every connection to and from it is allowed by network policy\n") {
		t.Errorf("output lacks that no policy selects the pod:\n%s", out.String())
	}

	// The seed's Calico policies select every pod: explain lists them in Calico's order.
	if _, err := env.Kubectl(t.Context(), "", "apply", "-f", "../netpol/testdata/seed-003-calico.yaml"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := Run(t.Context(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut.String())
	}
	want := "Network policies selecting the pod (in the order they apply):\n" +
		"  Calico default tier: GlobalNetworkPolicy allow-dns-egress (egress)\n" +
		"  Calico default tier: GlobalNetworkPolicy default-deny (ingress, egress)\n" +
		"  Calico default tier: NetworkPolicy.projectcalico.org default/netpol-sa-demo (ingress)\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}

	// A NetworkPolicy whose named port no pod declares: explain shows netpol.Check's finding
	// under it, as podsg-controller's event says it.
	if _, err := env.Kubectl(t.Context(), `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: metrics-only, namespace: default}
spec:
  podSelector: {}
  ingress:
  - ports:
    - port: metrics
`, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := Run(t.Context(), args, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d, stderr:\n%s", code, errOut.String())
	}
	want = "  Calico default tier: NetworkPolicy default/metrics-only (ingress)\n" +
		`    PortNotExposed: spec.ingress[0].ports[0]: no pod the policy selects has a TCP container port named "metrics", so this port allows nothing` + "\n"
	if !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}

	out.Reset()
	errOut.Reset()
	args = []string{"explain", "pod", "default/nope", "--kubeconfig", env.Kubeconfig}
	if code := Run(t.Context(), args, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "getting pod default/nope") {
		t.Fatalf("explaining a missing pod: exit code %d, stderr %q", code, errOut.String())
	}
}
