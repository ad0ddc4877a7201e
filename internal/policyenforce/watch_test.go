package policyenforce_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"
	cnpclient "sigs.k8s.io/network-policy-api/pkg/client/clientset/versioned"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/policyenforce"
	"github.com/podsg/podsg/internal/testenv"
)

// TestWatchTurnsAppliedPoliciesIntoTheRuleset: against a real API server with podsg's CRDs
// (the ClusterNetworkPolicy CRD among them), the agent's watches see a pod get its address,
// a NetworkPolicy and a ClusterNetworkPolicy applied, and each reaches the installed ruleset;
// then Calico's (a namespaced projectcalico.org/v3 NetworkPolicy that admits pods by their
// ServiceAccount's labels, as the seed's netpol-sa-demo), and a relabelled ServiceAccount.
func TestWatchTurnsAppliedPoliciesIntoTheRuleset(t *testing.T) {
	env := testenv.Start(t, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(env.Config)
	cnp := cnpclient.NewForConfigOrDie(env.Config)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, note, err := policyenforce.StartWatch(ctx, kube, cnp, dynamic.NewForConfigOrDie(env.Config))
	if err != nil {
		t.Fatal(err)
	}
	if note != "" {
		t.Fatalf("ClusterNetworkPolicy not served: %s", note)
	}
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}, applied: make(chan string, 100)}
	e := policyenforce.New(config(), w, nft, nil)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()

	for _, p := range []*corev1.Pod{pod("prod", "db", node, "", map[string]string{"app": "db"}), pod("prod", "web", "node-b", "", map[string]string{"app": "web"})} {
		p.Spec.Containers = []corev1.Container{{Name: "c", Image: "i"}}
		created, err := kube.CoreV1().Pods("prod").Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Name == "web" { // the kubelet of node-b reports web's address
			created.Status.PodIPs = []corev1.PodIP{{IP: "10.0.1.7"}}
			created.Status.PodIP = "10.0.1.7"
			if _, err := kube.CoreV1().Pods("prod").UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.Admit(ctx, policyenforce.LocalPod{Namespace: "prod", Name: "db", HostVeth: "enidb", IP: netip.MustParseAddr("10.0.0.5")}); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.NetworkingV1().NetworkPolicies("prod").Create(ctx, dbPolicy(), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nft.applied, func(s string) bool {
		return strings.Contains(s, "ip saddr 10.0.1.7/32 meta l4proto tcp th dport 5432 return") &&
			strings.Contains(s, "counter name "+netpol.CounterName("prod/db")+" drop")
	})
	deny := denyEgressTo10_2()
	if _, err := cnp.PolicyV1beta1().ClusterNetworkPolicies().Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nft.applied, func(s string) bool {
		return strings.Contains(s, "ip daddr 10.2.0.0/16 counter name "+netpol.CounterName("no-egress-10-2")+" drop")
	})

	sa, err := kube.CoreV1().ServiceAccounts("prod").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "my-sa", Labels: map[string]string{"name": "my-sa"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	app := pod("prod", "app", "node-b", "", nil)
	app.Spec.ServiceAccountName = "my-sa"
	app.Spec.Containers = []corev1.Container{{Name: "c", Image: "i"}}
	if app, err = kube.CoreV1().Pods("prod").Create(ctx, app, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	app.Status.PodIPs, app.Status.PodIP = []corev1.PodIP{{IP: "10.0.1.9"}}, "10.0.1.9"
	if _, err := kube.CoreV1().Pods("prod").UpdateStatus(ctx, app, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := env.Kubectl(ctx, `apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata:
  name: sa-demo
  namespace: prod
spec:
  selector: app == "db"
  ingress:
  - action: Allow
    source:
      serviceAccounts:
        selector: 'name == "my-sa"'
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("applying a Calico NetworkPolicy: %v: %s", err, out)
	}
	waitFor(t, nft.applied, func(s string) bool {
		return strings.Contains(s, `comment "Calico default tier"`) && strings.Contains(s, "ip saddr 10.0.1.9/32 return")
	})
	sa.Labels["name"] = "not-my-sa"
	if _, err := kube.CoreV1().ServiceAccounts("prod").Update(ctx, sa, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nft.applied, func(s string) bool {
		return strings.Contains(s, `comment "Calico default tier"`) && !strings.Contains(s, "10.0.1.9")
	})
}

// TestWatchPolicyAPIsInstalledLater: an agent started on an API server that serves neither
// ClusterNetworkPolicy nor Calico's policies enforces the others and says so; once their CRDs
// are installed, with no restart, a ClusterNetworkPolicy and a Calico policy applied reach the
// node's ruleset.
func TestWatchPolicyAPIsInstalledLater(t *testing.T) {
	crds := []string{"clusternetworkpolicies.policy.networking.k8s.io", "globalnetworkpolicies.projectcalico.org", "networkpolicies.projectcalico.org"}
	env := testenv.Start(t, testenv.Options{OmitCRDs: crds})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kube := kubernetes.NewForConfigOrDie(env.Config)
	cnp := cnpclient.NewForConfigOrDie(env.Config)
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "prod"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w, note, err := policyenforce.WatchOptions{Discover: 200 * time.Millisecond}.Start(ctx, kube, cnp, dynamic.NewForConfigOrDie(env.Config))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"not enforcing ClusterNetworkPolicy until it does", "not enforcing Calico's policies until it does"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q lacks %q", note, want)
		}
	}
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}, applied: make(chan string, 100)}
	e := policyenforce.New(config(), w, nft, nil)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	db := pod("prod", "db", node, "", map[string]string{"app": "db"})
	db.Spec.Containers = []corev1.Container{{Name: "c", Image: "i"}}
	if _, err := kube.CoreV1().Pods("prod").Create(ctx, db, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Admit(ctx, dbLocal); err != nil {
		t.Fatal(err)
	}

	env.InstallCRDs(t, crds...)
	deny := denyEgressTo10_2()
	// The CRD is served, but the agent's discovery may not have seen it yet: a ruleset with the
	// policy is the proof that it did.
	if _, err := cnp.PolicyV1beta1().ClusterNetworkPolicies().Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, nft.applied, func(s string) bool {
		return strings.Contains(s, "ip daddr 10.2.0.0/16 counter name "+netpol.CounterName("no-egress-10-2")+" drop")
	})
	if out, err := env.Kubectl(ctx, `apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: default-deny
spec:
  selector: all()
  types: [Ingress, Egress]
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("applying a Calico GlobalNetworkPolicy: %v: %s", err, out)
	}
	waitFor(t, nft.applied, func(s string) bool { return strings.Contains(s, `comment "Calico default tier"`) })
}

// denyEgressTo10_2 is an Admin tier ClusterNetworkPolicy denying every pod's egress to
// 10.2.0.0/16; its compiled rule is "ip daddr 10.2.0.0/16 counter name … drop".
func denyEgressTo10_2() *cnpv1.ClusterNetworkPolicy {
	return &cnpv1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-egress-10-2"},
		Spec: cnpv1.ClusterNetworkPolicySpec{Tier: cnpv1.AdminTier, Priority: 5,
			Subject: cnpv1.ClusterNetworkPolicySubject{Namespaces: &metav1.LabelSelector{}},
			Egress: []cnpv1.ClusterNetworkPolicyEgressRule{{Name: "ten-two", Action: cnpv1.ClusterNetworkPolicyRuleActionDeny,
				To: []cnpv1.ClusterNetworkPolicyEgressPeer{{Networks: []cnpv1.CIDR{"10.2.0.0/16"}}}}}}}
}
