package policyenforce_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podsg/podsg/internal/cluster/clustertest"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/policyenforce"
	"github.com/podsg/podsg/internal/testenv"
)

// benchCluster is 1,000 pods over 10 nodes in 20 namespaces (50 apps of 20 pods), and 200
// NetworkPolicies: each app isolated for ingress and admitting 4 other apps on a port, and
// (one in two) egress to one app and a /16.
func benchCluster() (policyenforce.Inputs, []policyenforce.LocalPod) {
	var in policyenforce.Inputs
	var local []policyenforce.LocalPod
	for n := range 20 {
		in.Namespaces = append(in.Namespaces, namespace(fmt.Sprintf("ns%d", n)))
	}
	for n := range 10 {
		in.Nodes = append(in.Nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", n)},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.1.255.%d", n+1)}}}})
	}
	for i := range 1000 {
		nodeName := fmt.Sprintf("node-%d", i%10)
		p := pod(fmt.Sprintf("ns%d", i%20), fmt.Sprintf("pod%d", i), nodeName, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1),
			map[string]string{"app": fmt.Sprintf("app%d", i%50)})
		p.Spec.Containers = []corev1.Container{{Name: "c", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}
		in.Pods = append(in.Pods, p)
		if nodeName == "node-0" {
			local = append(local, policyenforce.LocalPod{Namespace: p.Namespace, Name: p.Name, HostVeth: fmt.Sprintf("eni%011d", i)})
		}
	}
	port, named := intstr.FromInt32(80), intstr.FromString("http")
	sel := func(app int) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app%d", app%50)}}
	}
	for k := range 200 {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", k%20), Name: fmt.Sprintf("np%d", k)},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel(k),
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{{
					From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: sel(k + 1)}, {PodSelector: sel(k + 2)}},
					Ports: []networkingv1.NetworkPolicyPort{{Port: &port}, {Port: &named}}}}}}
		if k%2 == 0 {
			np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
				{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: sel(k + 3)}, {IPBlock: &networkingv1.IPBlock{CIDR: "172.16.0.0/16"}}}}}
		}
		in.NetworkPolicies = append(in.NetworkPolicies, np)
	}
	return in, local
}

// BenchmarkEnforceCompile: the cluster's state to the node's nft script (100 local pods of
// 1,000, 200 policies), as each change costs the agent before nft runs.
func BenchmarkEnforceCompile(b *testing.B) {
	in, local := benchCluster()
	var size int
	for b.Loop() {
		eval, u, pods, errs := policyenforce.Compile("node-0", in, local)
		if len(errs) > 0 {
			b.Fatal(errs)
		}
		rs, err := netpol.CompileNode(eval, u, pods, netpol.NodeOptions{PodInterfaces: []string{"eni*"}})
		if err != nil {
			b.Fatal(err)
		}
		size = len(rs.Script)
	}
	b.ReportMetric(float64(size)/1024, "script-KiB")
}

// BenchmarkEnforceApply: one Sync (compile, read the counters, replace the table with nft)
// into a network namespace of its own, for the same cluster.
func BenchmarkEnforceApply(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.Require(b, testenv.IPRoute2, testenv.NFTables)
	name := "peb-" + clustertest.Suffix(b)
	clustertest.Netns(b, name)
	in, local := benchCluster()
	e := policyenforce.New(policyenforce.Config{NodeName: "node-0", PodInterfaces: []string{"eni*"}}, newFakeSource(in), policyenforce.NFT{Netns: name}, nil)
	for _, lp := range local {
		e.SetLocal(lp)
	}
	for b.Loop() {
		if err := e.Sync(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	out := clustertest.InNetns(b, name, "nft", "list", "table", "inet", netpol.NFTTable)
	b.ReportMetric(float64(strings.Count(out, "\n")), "ruleset-lines")
}
