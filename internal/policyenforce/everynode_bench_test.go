package policyenforce_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	cnpclient "sigs.k8s.io/network-policy-api/pkg/client/clientset/versioned"

	"github.com/podsg/podsg/internal/cluster/clustertest"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/policyenforce"
	"github.com/podsg/podsg/internal/testenv"
)

// The cluster of BenchmarkPolicyEnforcedOnEveryNode: 1,000 pods in 20 namespaces of 50, each
// namespace 5 apps of 10 pods with one pod of each app on each of 10 nodes (so every policy
// selects pods on every node, and each node holds 100 pods), and 200 NetworkPolicies, two per
// app, shaped as benchCluster's.
const (
	evNodes      = 10
	evNamespaces = 20
	evPods       = 1000
	evPolicies   = 200
	evApps       = 5 // per namespace
	// evAppliesEnv: how many policies are applied (and then deleted), one at a time.
	evAppliesEnv     = "PODSG_NETPOL_BENCH_APPLIES"
	evAppliesDefault = 10
)

// BenchmarkPolicyEnforcedOnEveryNode: with a real API server holding 1,000 pods over 10 nodes
// and 200 NetworkPolicies, each node's agent enforcer runs in this process as podsg-agent wires
// it (its own watches, policyenforce.StartWatch; the enforcer's Run loop; real nft into a
// network namespace of the node's own, standing for the node). Then policies are applied one
// at a time through the API (client-go's create, the request `kubectl apply` makes), each
// selecting pods on every node and admitting a CIDR no other rule names; the clock runs from
// the request until each node's nft has installed a ruleset holding that CIDR (the nft command
// returned: the kernel has it). Each policy is then deleted and timed until every node's
// installed ruleset no longer holds it.
//
// Reported: p50/p99 of apply → enforced on the last node (per policy) and on each node (per
// policy and node), the spread between the first and the last node of a policy, delete →
// removed everywhere, the nft run of one sync, and the Go heap one node's watches and enforcer
// hold (live after GC, measured around the first node's start) with what one sync allocates
// and how long it takes while that node is the only one running (compile, read the counters,
// nft).
// The 10 nodes share this machine's cores: every node recompiles and reinstalls its ruleset at
// each change, so the times are those of 10 agents competing for 2 cores, an upper bound of one
// node's own.
func BenchmarkPolicyEnforcedOnEveryNode(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.Require(b, testenv.IPRoute2, testenv.NFTables)
	applies := evAppliesDefault
	if v := os.Getenv(evAppliesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("%s=%q: want a positive count", evAppliesEnv, v)
		}
		applies = n
	}
	env := testenv.Start(b, testenv.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	kube := kubernetes.NewForConfigOrDie(env.Config)
	locals := seedEveryNodeCluster(b, ctx, kube)

	sfx := clustertest.Suffix(b)
	nodes := make([]*evNode, evNodes)
	var runs sync.WaitGroup
	b.Cleanup(func() { cancel(); runs.Wait() }) // before the namespaces go (cleanups run last first)
	var heap, allocPerSync float64
	var oneSync time.Duration // node-0's second sync, before the other nodes start
	for i := range nodes {
		n := &evNode{name: fmt.Sprintf("node-%d", i), nft: &recordingNFT{NFT: policyenforce.NFT{Netns: fmt.Sprintf("pev%d-%s", i, sfx)}}}
		clustertest.Netns(b, n.nft.Netns)
		nodes[i] = n
		var before runtime.MemStats
		if i == 0 {
			runtime.GC()
			runtime.ReadMemStats(&before)
		}
		w, note, err := policyenforce.StartWatch(ctx, kube, cnpclient.NewForConfigOrDie(env.Config), dynamic.NewForConfigOrDie(env.Config))
		if err != nil {
			b.Fatal(err)
		}
		if note != "" && !strings.Contains(note, "Calico") { // no Calico policy here; ClusterNetworkPolicy is served
			b.Fatalf("watch: %s", note)
		}
		e := policyenforce.New(policyenforce.Config{NodeName: n.name, PodInterfaces: []string{"eni*"}}, w, n.nft, nil)
		for _, lp := range locals[n.name] {
			e.SetLocal(lp)
		}
		// As firstEnforcement does: the node's pods known, one sync before Run.
		if err := e.Sync(ctx); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			var after, again runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / (1 << 20)
			began := time.Now()
			if err := e.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			oneSync = time.Since(began)
			runtime.ReadMemStats(&again)
			allocPerSync = float64(again.TotalAlloc-after.TotalAlloc) / (1 << 20)
		}
		runs.Go(func() {
			if err := e.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				b.Errorf("%s: Run: %v", n.name, err)
			}
		})
	}
	if got := nodes[0].nft.lastScript(); !strings.Contains(got, "ns0/app-0-a") {
		b.Fatalf("node-0's ruleset does not enforce the seeded policies:\n%.2000s", got)
	}

	var everywhere, perNode, spread, removed []time.Duration
	m := 0
	for b.Loop() {
		for range applies {
			np := markerPolicy(m)
			marker := markerCIDR(m)
			m++
			began := time.Now()
			seen := waitAll(nodes, marker, true)
			if _, err := kube.NetworkingV1().NetworkPolicies(np.Namespace).Create(ctx, np, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			times := collect(b, seen, began, "enforce "+np.Namespace+"/"+np.Name)
			perNode = append(perNode, times...)
			everywhere = append(everywhere, slices.Max(times))
			spread = append(spread, slices.Max(times)-slices.Min(times))

			began = time.Now()
			gone := waitAll(nodes, marker, false)
			if err := kube.NetworkingV1().NetworkPolicies(np.Namespace).Delete(ctx, np.Name, metav1.DeleteOptions{}); err != nil {
				b.Fatal(err)
			}
			removed = append(removed, slices.Max(collect(b, gone, began, "remove "+np.Namespace+"/"+np.Name)))
		}
	}
	// The recorder saw it; the kernel's table says the same (the last policy is gone).
	for _, n := range nodes {
		out := clustertest.InNetns(b, n.nft.Netns, "nft", "list", "table", "inet", netpol.NFTTable)
		if !strings.Contains(out, "ns0/app-0-a") || strings.Contains(out, markerCIDR(m-1)) {
			b.Fatalf("%s's table is not the last ruleset installed", n.name)
		}
	}
	var nftRuns []time.Duration
	for _, n := range nodes {
		nftRuns = append(nftRuns, n.nft.durations()...)
	}
	testenv.ReportLatencies(b, "all-nodes", everywhere)
	testenv.ReportLatencies(b, "each-node", perNode)
	testenv.ReportLatencies(b, "spread", spread)
	testenv.ReportLatencies(b, "delete-all-nodes", removed)
	testenv.ReportLatencies(b, "nft-run", nftRuns)
	b.ReportMetric(heap, "agent-heap-MiB")
	b.ReportMetric(allocPerSync, "alloc/sync-MiB")
	b.ReportMetric(float64(oneSync.Milliseconds()), "one-node-sync-ms")
	b.ReportMetric(float64(len(nodes[0].nft.lastScript()))/1024, "script-KiB")
}

type evNode struct {
	name string
	nft  *recordingNFT
}

// recordingNFT is the real nft, recording when each ruleset was installed and how long the
// nft run took, and telling a waiter when a ruleset that holds (or no longer holds) a string
// has been installed.
type recordingNFT struct {
	policyenforce.NFT

	mu      sync.Mutex
	last    string
	runs    []time.Duration
	marker  string
	present bool
	seen    chan time.Time
}

func (r *recordingNFT) Apply(ctx context.Context, script string) error {
	began := time.Now()
	if err := r.NFT.Apply(ctx, script); err != nil {
		return err
	}
	done := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = script
	r.runs = append(r.runs, done.Sub(began))
	if r.seen != nil && strings.Contains(script, r.marker) == r.present {
		r.seen <- done
		r.seen = nil
	}
	return nil
}

// await arms the recorder: the returned channel gets the time a ruleset with (present) or
// without the marker is installed.
func (r *recordingNFT) await(marker string, present bool) <-chan time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.marker, r.present, r.seen = marker, present, make(chan time.Time, 1)
	return r.seen
}

func (r *recordingNFT) lastScript() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *recordingNFT) durations() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.runs)
}

func waitAll(nodes []*evNode, marker string, present bool) []<-chan time.Time {
	out := make([]<-chan time.Time, len(nodes))
	for i, n := range nodes {
		out[i] = n.nft.await(marker, present)
	}
	return out
}

// collect waits for every node's installation and returns each one's time since began.
func collect(b *testing.B, seen []<-chan time.Time, began time.Time, what string) []time.Duration {
	b.Helper()
	timeout := time.After(5 * time.Minute)
	out := make([]time.Duration, len(seen))
	for i, ch := range seen {
		select {
		case at := <-ch:
			out[i] = at.Sub(began)
		case <-timeout:
			b.Fatalf("%s: node-%d installed no such ruleset within 5 minutes", what, i)
		}
	}
	return out
}

// markerCIDR is what the m-th applied policy admits, and no other rule names.
func markerCIDR(m int) string { return fmt.Sprintf("172.31.%d.%d/32", m/250, m%250+1) }

// markerPolicy selects one app (a pod on every node) and admits markerCIDR(m) on 443.
func markerPolicy(m int) *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(443)
	return &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", m%evNamespaces), Name: fmt.Sprintf("applied-%d", m)},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app%d", m%evApps)}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: markerCIDR(m)}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}}}
}

// seedEveryNodeCluster creates the nodes, namespaces, pods (bound, Running, with their
// addresses, as kubelets report them) and policies, and returns each node's pods as its
// agent's CNI records know them.
func seedEveryNodeCluster(b *testing.B, ctx context.Context, kube kubernetes.Interface) map[string][]policyenforce.LocalPod {
	b.Helper()
	for n := range evNodes {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", n)}}
		created, err := kube.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			b.Fatal(err)
		}
		created.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("10.1.255.%d", n+1)}}
		if _, err := kube.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for n := range evNamespaces {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, namespace(fmt.Sprintf("ns%d", n)), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	locals := map[string][]policyenforce.LocalPod{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range evPods {
		g.Go(func() error {
			j := i % (evPods / evNamespaces)
			nodeName := fmt.Sprintf("node-%d", j/evApps)
			ip := fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)
			p := pod(fmt.Sprintf("ns%d", i/(evPods/evNamespaces)), fmt.Sprintf("pod%d", i), nodeName, "", map[string]string{"app": fmt.Sprintf("app%d", j%evApps)})
			p.Spec.Containers = []corev1.Container{{Name: "c", Image: "i", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}
			created, err := kube.CoreV1().Pods(p.Namespace).Create(gctx, p, metav1.CreateOptions{})
			if err != nil {
				return err
			}
			created.Status.Phase = corev1.PodRunning
			created.Status.PodIP, created.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
			if _, err := kube.CoreV1().Pods(p.Namespace).UpdateStatus(gctx, created, metav1.UpdateOptions{}); err != nil {
				return err
			}
			mu.Lock()
			locals[nodeName] = append(locals[nodeName], policyenforce.LocalPod{Namespace: p.Namespace, Name: p.Name,
				HostVeth: fmt.Sprintf("eni%011d", i), IP: netip.MustParseAddr(ip)})
			mu.Unlock()
			return nil
		})
	}
	for k := range evPolicies {
		g.Go(func() error {
			_, err := kube.NetworkingV1().NetworkPolicies(fmt.Sprintf("ns%d", k%evNamespaces)).Create(gctx, seededPolicy(k), metav1.CreateOptions{})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("seeding the cluster: %v", err)
	}
	return locals
}

// seededPolicy k isolates app (k/20)%5 of namespace k%20 for ingress, admitting two other apps
// (one in any namespace) on 80 and the named port; one in two also isolates its egress.
func seededPolicy(k int) *networkingv1.NetworkPolicy {
	app := (k / evNamespaces) % evApps
	sel := func(a int) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app%d", a%evApps)}}
	}
	port, named := intstr.FromInt32(80), intstr.FromString("http")
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns%d", k%evNamespaces), Name: fmt.Sprintf("app-%d-%c", app, 'a'+k/(evNamespaces*evApps))},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: *sel(app),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: sel(app + 1)}, {PodSelector: sel(app + 2)}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}, {Port: &named}}}}}}
	if k%2 == 0 {
		np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
		np.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: sel(app + 3)}, {IPBlock: &networkingv1.IPBlock{CIDR: "172.16.0.0/16"}}}}}
	}
	return np
}
