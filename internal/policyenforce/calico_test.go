package policyenforce_test

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/policyenforce"
)

// seedCalico reads the seed's Calico manifests, as internal/netpol's tests keep them.
func seedCalico(t *testing.T) ([]*calicov3.GlobalNetworkPolicy, []*calicov3.NetworkPolicy) {
	t.Helper()
	data, err := os.ReadFile("../netpol/testdata/seed-003-calico.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var gnps []*calicov3.GlobalNetworkPolicy
	var nps []*calicov3.NetworkPolicy
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var kind struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &kind); err != nil {
			t.Fatal(err)
		}
		switch kind.Kind {
		case "GlobalNetworkPolicy":
			p := &calicov3.GlobalNetworkPolicy{}
			err = yaml.UnmarshalStrict([]byte(doc), p)
			gnps = append(gnps, p)
		case "NetworkPolicy":
			p := &calicov3.NetworkPolicy{}
			err = yaml.UnmarshalStrict([]byte(doc), p)
			nps = append(nps, p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(gnps) != 2 || len(nps) != 1 {
		t.Fatalf("seed: %d GlobalNetworkPolicies, %d NetworkPolicies", len(gnps), len(nps))
	}
	return gnps, nps
}

// seedWorld is the seed's recipe on one node: web (local) in default; app, running as my-sa,
// and other, running as default, on another node; CoreDNS in kube-system, which the seed labels
// name=kube-system for its DNS rule.
func seedWorld(t *testing.T) policyenforce.Inputs {
	gnps, nps := seedCalico(t)
	app := pod("default", "app", "node-b", "10.0.1.6", nil)
	app.Spec.ServiceAccountName = "my-sa"
	kubeSystem := namespace("kube-system")
	kubeSystem.Labels["name"] = "kube-system"
	return policyenforce.Inputs{
		Pods: []*corev1.Pod{pod("default", "web", node, "10.0.0.5", map[string]string{"app": "web"}), app,
			pod("default", "other", "node-b", "10.0.1.8", nil), pod("kube-system", "coredns", "node-b", "10.0.1.53", nil)},
		Namespaces:            []*corev1.Namespace{namespace("default"), kubeSystem},
		ServiceAccounts:       []*corev1.ServiceAccount{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "my-sa", Labels: map[string]string{"name": "my-sa"}}}},
		GlobalNetworkPolicies: gnps,
		CalicoNetworkPolicies: nps,
	}
}

var webLocal = policyenforce.LocalPod{Namespace: "default", Name: "web", HostVeth: "eniweb", IP: dbLocal.IP}

// TestCalicoPoliciesAreEnforced: with the seed's Calico policies, Calico's default tier decides
// each direction: web's ingress admits only the pod running as my-sa (netpol-sa-demo), web's
// egress only DNS to kube-system (allow-dns-egress), everything else ends in default-deny; the
// node's ruleset says the same for its pod web, counted against the policy that denies. The
// ruleset follows the ServiceAccount's labels: relabelled (what readonly-sa-role forbids), my-sa's
// pod is no longer admitted. And a Calico policy podsg cannot enforce is left out, named.
func TestCalicoPoliciesAreEnforced(t *testing.T) {
	in := seedWorld(t)
	eval, u, _, errs := policyenforce.Compile(node, in, []policyenforce.LocalPod{webLocal})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	end := func(i int) netpol.Endpoint { return netpol.Endpoint{Pod: u.Pods[i], IP: u.Pods[i].IPs[0]} }
	web, app, other, coredns := end(0), end(1), end(2), end(3)
	tcp := func(src, dst netpol.Endpoint) netpol.Connection {
		return netpol.Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolTCP, Port: 8080}
	}
	for _, c := range []struct {
		what             string
		judgement        netpol.Judgement
		allowed          bool
		decidingPolicyIn string
	}{
		{"web's ingress from my-sa's pod", eval.Evaluate(tcp(app, web)).Ingress, true, "netpol-sa-demo"},
		{"web's ingress from another ServiceAccount's pod", eval.Evaluate(tcp(other, web)).Ingress, false, "default-deny"},
		{"web's egress to CoreDNS, UDP 53", eval.Evaluate(netpol.Connection{Src: web, Dst: coredns, Protocol: corev1.ProtocolUDP, Port: 53}).Egress, true, "allow-dns-egress"},
		{"web's egress to CoreDNS, TCP 53", eval.Evaluate(netpol.Connection{Src: web, Dst: coredns, Protocol: corev1.ProtocolTCP, Port: 53}).Egress, false, "allow-dns-egress"},
		{"web's egress to my-sa's pod", eval.Evaluate(tcp(web, app)).Egress, false, "allow-dns-egress"},
		// all() selects CoreDNS too: the seed's verbatim policies drop DNS at its ingress.
		{"CoreDNS's ingress from web, UDP 53", eval.Evaluate(netpol.Connection{Src: web, Dst: coredns, Protocol: corev1.ProtocolUDP, Port: 53}).Ingress, false, "default-deny"},
	} {
		step, _ := c.judgement.Decider()
		if c.judgement.Allowed != c.allowed || !strings.Contains(step.Policy, c.decidingPolicyIn) {
			t.Errorf("%s: allowed %v by %q, want %v by %s", c.what, c.judgement.Allowed, step.Policy, c.allowed, c.decidingPolicyIn)
		}
	}

	src := newFakeSource(in)
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}}
	e := policyenforce.New(config(), src, nft, nil)
	e.SetLocal(webLocal)
	if err := e.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	script := nft.last()
	for _, want := range []string{
		`comment "Calico default tier"`,
		"ip saddr 10.0.1.6/32 return",
		"counter name " + netpol.CounterName("GlobalNetworkPolicy default-deny") + " drop",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the ruleset lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, "10.0.1.8") {
		t.Errorf("the ruleset names other's address, which no rule admits:\n%s", script)
	}

	src.set(func(in *policyenforce.Inputs) {
		relabelled := in.ServiceAccounts[0].DeepCopy()
		relabelled.Labels["name"] = "not-my-sa"
		in.ServiceAccounts = []*corev1.ServiceAccount{relabelled}
	})
	if err := e.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(nft.last(), "10.0.1.6") {
		t.Errorf("my-sa relabelled, its pod is still admitted:\n%s", nft.last())
	}

	bad := in.GlobalNetworkPolicies[1].DeepCopy()
	bad.Name, bad.Spec.DoNotTrack = "host-only", true
	in.GlobalNetworkPolicies = append(in.GlobalNetworkPolicies, bad)
	if _, _, _, errs := policyenforce.Compile(node, in, []policyenforce.LocalPod{webLocal}); len(errs) != 1 || !strings.Contains(errs[0].Error(), "host-only") {
		t.Errorf("errors %v, want one naming GlobalNetworkPolicy host-only", errs)
	}
}
