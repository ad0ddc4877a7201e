package policyenforce_test

import (
	"context"
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	cnpv1 "sigs.k8s.io/network-policy-api/apis/v1beta1"

	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/policyenforce"
)

const node = "node-a"

func pod(ns, name, nodeName, ip string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PodSpec{NodeName: nodeName}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if ip != "" {
		p.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	return p
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{netpol.NamespaceNameLabel: name}}}
}

// denyAllIngress isolates app=db for ingress and admits app=web on TCP 5432.
func dbPolicy() *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(5432)
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "prod", Name: "db"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}}}
}

func world() policyenforce.Inputs {
	return policyenforce.Inputs{
		Pods: []*corev1.Pod{
			pod("prod", "db", node, "10.0.0.5", map[string]string{"app": "db"}),
			pod("prod", "web", "node-b", "10.0.1.7", map[string]string{"app": "web"}),
		},
		Namespaces:      []*corev1.Namespace{namespace("prod")},
		Nodes:           []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: node}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.1"}}}}},
		NetworkPolicies: []*networkingv1.NetworkPolicy{dbPolicy()},
	}
}

func config() policyenforce.Config {
	return policyenforce.Config{NodeName: node, PodInterfaces: []string{"eni*", "vlan*"}, NotPodInterfaces: []string{"vlan.eth.*"}}
}

var dbLocal = policyenforce.LocalPod{Namespace: "prod", Name: "db", HostVeth: "enidb", IP: netip.MustParseAddr("10.0.0.5")}

// TestSyncEnforcesTheNodesPods: the ruleset judges the local pod's veth by its policy (the
// remote web pod's address admitted on 5432, the node's own address passed, the rest counted
// and dropped against the policy; its egress, which no rule concerns, not at all), and drops
// what crosses an unknown pod veth.
func TestSyncEnforcesTheNodesPods(t *testing.T) {
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}}
	e := policyenforce.New(config(), newFakeSource(world()), nft, nil)
	e.SetLocal(dbLocal)
	if err := e.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	script := nft.last()
	for _, want := range []string{
		"table inet podsg_netpol\ndelete table inet podsg_netpol\n", // one transaction replaces the table
		`oifname "enidb" jump`,
		`elements = { "enidb" }`,
		"ip saddr 10.0.1.7/32 meta l4proto tcp th dport 5432 return",
		"ip saddr 10.0.0.1/32", // the node's probes
		"counter name " + netpol.CounterName("prod/db") + " drop",
		`iifname "vlan*" iifname != @pod_ifs iifname != "vlan.eth.*" counter name ` + netpol.CounterName(netpol.UnknownPodPolicy) + " drop",
		`oifname "eni*" oifname != @pod_ifs oifname != "vlan.eth.*" counter name`,
		"priority filter",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the ruleset lacks %q:\n%s", want, script)
		}
	}
	if strings.Contains(script, `iifname "enidb" jump`) {
		t.Error("db's egress has chains, though no policy has a rule for it")
	}
	if strings.Contains(script, "log prefix") {
		t.Error("logs drops without LogDenied")
	}
}

// TestAdmitReturnsOnceTheRulesetKnowsThePod: the CNI ADD's wait ends only after a ruleset
// with the pod's veth is installed; while installing fails, it does not end.
func TestAdmitReturnsOnceTheRulesetKnowsThePod(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}, fail: errNFT}
	e := policyenforce.New(config(), newFakeSource(world()), nft, nil)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()

	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	err := e.Admit(short, dbLocal)
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), "Operation not permitted") {
		t.Fatalf("Admit while nft fails: %v, want the wait to fail naming nft's error", err)
	}
	nft.setFail(nil)
	if err := e.Admit(ctx, dbLocal); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nft.last(), `"enidb"`) {
		t.Fatalf("Admit returned before a ruleset with the pod's veth was installed:\n%s", nft.last())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
}

// TestRunFollowsChangesAndNeverDeletes: a new policy reaches the ruleset; Forget removes the
// pod; every ruleset replaces the table in one script, and stopping deletes nothing (the
// table stays until a restarted agent replaces it).
func TestRunFollowsChangesAndNeverDeletes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}, applied: make(chan string, 100)}
	src := newFakeSource(world())
	e := policyenforce.New(config(), src, nft, nil)
	e.SetLocal(dbLocal)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	waitFor(t, nft.applied, func(s string) bool { return strings.Contains(s, `"enidb"`) })

	src.set(func(in *policyenforce.Inputs) {
		in.ClusterPolicies = append(in.ClusterPolicies, &cnpv1.ClusterNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-db-egress"},
			Spec: cnpv1.ClusterNetworkPolicySpec{Tier: cnpv1.AdminTier, Priority: 1,
				Subject: cnpv1.ClusterNetworkPolicySubject{Namespaces: &metav1.LabelSelector{}},
				Egress: []cnpv1.ClusterNetworkPolicyEgressRule{{Name: "none", Action: cnpv1.ClusterNetworkPolicyRuleActionDeny,
					To: []cnpv1.ClusterNetworkPolicyEgressPeer{{Networks: []cnpv1.CIDR{"0.0.0.0/0"}}}}}}})
	})
	waitFor(t, nft.applied, func(s string) bool {
		return strings.Contains(s, "counter name "+netpol.CounterName("no-db-egress")+" drop")
	})
	e.Forget("prod", "db")
	waitFor(t, nft.applied, func(s string) bool { return !strings.Contains(s, `"enidb"`) })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	for _, s := range nft.scripts {
		if !strings.HasPrefix(s, "table inet podsg_netpol\ndelete table inet podsg_netpol\ntable inet podsg_netpol {") {
			t.Errorf("a ruleset that does not replace the table in one script:\n%s", s)
		}
	}
}

func waitFor(t *testing.T, ch <-chan string, ok func(string) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return
			}
		case <-deadline:
			t.Fatal("no such ruleset installed within 10 s")
		}
	}
}

// TestCountersSurviveReplacementAndRestart: what the old table counted is declared in the
// new one, also by a new enforcer (a restarted agent), and the metric sums by policy.
func TestCountersSurviveReplacementAndRestart(t *testing.T) {
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}}
	e := policyenforce.New(config(), newFakeSource(world()), nft, nil)
	e.SetLocal(dbLocal)
	if err := e.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	nft.count(netpol.CounterName("prod/db"), 7)
	reg := prometheus.NewPedanticRegistry()
	restarted := policyenforce.New(config(), newFakeSource(world()), nft, reg)
	restarted.SetLocal(dbLocal)
	if err := restarted.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := "counter " + netpol.CounterName("prod/db") + " {\n\t\tpackets 7 bytes 700\n"; !strings.Contains(nft.last(), want) {
		t.Fatalf("the new table does not carry the count %q:\n%s", want, nft.last())
	}
	nft.count(netpol.CounterName("prod/db"), 9)
	want := `
# HELP podsg_netpol_denied_packets_total Packets the node's network policy ruleset dropped, by the policy that denied them ("(pod not yet known)": a pod whose rules were not installed yet).
# TYPE podsg_netpol_denied_packets_total counter
podsg_netpol_denied_packets_total{policy="(pod not yet known)"} 0
podsg_netpol_denied_packets_total{policy="prod/db"} 9
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "podsg_netpol_denied_packets_total"); err != nil {
		t.Fatal(err)
	}
}

// TestInvalidPolicyIsLeftOutOthersApply: a policy the evaluator refuses does not stop the
// others from being enforced.
func TestInvalidPolicyIsLeftOutOthersApply(t *testing.T) {
	in := world()
	bad := dbPolicy()
	bad.Name = "bad"
	bad.Spec.PodSelector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Sometimes"}}
	in.NetworkPolicies = append(in.NetworkPolicies, bad)
	_, _, pods, errs := policyenforce.Compile(node, in, []policyenforce.LocalPod{dbLocal})
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "bad") {
		t.Fatalf("errors %v, want one naming the bad policy", errs)
	}
	nft := &fakeNFT{counters: map[string]netpol.CounterValue{}}
	e := policyenforce.New(config(), newFakeSource(in), nft, nil)
	e.SetLocal(dbLocal)
	if err := e.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(nft.last(), "counter name "+netpol.CounterName("prod/db")+" drop") || len(pods) != 1 {
		t.Fatalf("the valid policy is not enforced:\n%s", nft.last())
	}
}

// TestCompileKnowsANewPodBeforeTheAPIServerHasItsIP: the CNI record gives the address and,
// until the watch has the pod, the pod itself.
func TestCompileKnowsANewPodBeforeTheAPIServerHasItsIP(t *testing.T) {
	in := world()
	fresh := pod("prod", "web2", node, "", map[string]string{"app": "web"})
	lp := policyenforce.LocalPod{Namespace: "prod", Name: "web2", HostVeth: "eniweb2", IP: netip.MustParseAddr("10.0.0.9"), Pod: fresh}
	eval, u, pods, errs := policyenforce.Compile(node, in, []policyenforce.LocalPod{dbLocal, lp})
	if len(errs) > 0 || len(pods) != 2 {
		t.Fatalf("pods %v, errors %v", pods, errs)
	}
	rs, err := netpol.CompileNode(eval, u, pods, netpol.NodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rule := regexp.MustCompile(`ip saddr @(peers_\d+) meta l4proto tcp th dport 5432 return`).FindStringSubmatch(rs.Script)
	if rule == nil || !strings.Contains(rs.Script, "set "+rule[1]+" {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n\t\telements = { 10.0.0.9/32, 10.0.1.7/32 }") {
		t.Fatalf("db does not admit the new web pod's address:\n%s", rs.Script)
	}
}
