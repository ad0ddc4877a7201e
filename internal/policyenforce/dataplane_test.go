package policyenforce_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podsg/podsg/internal/cluster/clustertest"
	"github.com/podsg/podsg/internal/netpol"
	"github.com/podsg/podsg/internal/podnet"
	"github.com/podsg/podsg/internal/podstate"
	"github.com/podsg/podsg/internal/policyenforce"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// The rig: a node namespace with pods built by podnet.Add from the records the agent writes, a
// regular pod (client) and a branch pod in strict mode and one in standard mode (db-strict,
// db-standard), plus a miniature VPC fabric behind a trunk (as in podnet's tests): the fabric
// owns the branch pods' subnet gateway and reaches them through vxlan sub-interfaces only.
//
//	client ── eni… ── node ── trunk0 10.99.0.10 ══ vxlan ══ fabric 10.99.0.1 (gateway 10.30.0.1)
//	db-strict ── vlan… ──┘ (policy routing through vlan.eth.7; traffic to it comes back that way)
//	db-standard ── eni… ──┘ (same-node traffic stays on the node; off-node through vlan.eth.8)
const (
	rigTrunkIP  = "10.99.0.10"
	rigFabricIP = "10.99.0.1"
	rigGateway  = "10.30.0.1"
	rigSubnet   = "10.30.0.0/24"
	rigVXLAN    = 4789
	rigProbe    = time.Second
)

type rigPod struct {
	name, ns string
	rec      *podstate.Record
	labels   map[string]string
}

// TestPodsObeyNetworkPolicyInEveryMode: the db pods admit the client on 80 only; their egress
// reaches the fabric on 80 but not the client. Judged by real packets, for a strict and a
// standard branch pod, both directions, with the answer of every allowed probe as the return
// traffic; the node's own address reaches the isolated pods (probes); a pod whose veth the
// ruleset does not know yet sends and receives nothing until it is admitted; the stopped
// agent's table keeps enforcing, and a restarted agent replaces it carrying the counts.
// Services (a DNAT as kube-proxy's) are judged on their backends.
func TestPodsObeyNetworkPolicyInEveryMode(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.IPRoute2, testenv.NFTables, testenv.Ping)
	sfx := clustertest.Suffix(t)
	node, fabric := "pen-"+sfx, "pef-"+sfx
	clustertest.Netns(t, node)
	clustertest.Netns(t, fabric)
	clustertest.Veth(t, clustertest.End{Netns: node, Name: "trunk0", CIDR: rigTrunkIP + "/24"}, clustertest.End{Netns: fabric, Name: "fab-trunk", CIDR: rigFabricIP + "/24"})
	clustertest.InNetns(t, node, "ip", "route", "add", rigSubnet, "via", rigFabricIP, "dev", "trunk0")
	// The regular pods' addresses are the VPC's too: the fabric routes them to the node.
	clustertest.InNetns(t, fabric, "ip", "route", "add", "10.40.0.0/24", "via", rigTrunkIP, "dev", "fab-trunk")
	for _, n := range []string{node, fabric} {
		clustertest.InNetns(t, n, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	}
	// Strict mode's node settings (internal/agent/node.go).
	clustertest.InNetns(t, node, "ip", "rule", "add", "priority", "20", "lookup", "local")
	clustertest.InNetns(t, node, "ip", "rule", "del", "priority", "0", "lookup", "local")
	clustertest.InNetns(t, node, "sysctl", "-qw", "net.ipv4.tcp_early_demux=0")

	pods := []*rigPod{
		{name: "client", labels: map[string]string{"app": "client"}, rec: regularRecord("client", "10.40.0.5")},
		{name: "db-strict", labels: map[string]string{"app": "db"}, rec: branchRecord("db-strict", "10.30.0.5", 7, "02:3b:a8:a7:9c:f5", podstate.ModeStrict)},
		{name: "db-standard", labels: map[string]string{"app": "db"}, rec: branchRecord("db-standard", "10.30.0.6", 8, "02:3b:a8:a7:9c:f6", podstate.ModeStandard)},
		{name: "late", labels: map[string]string{"app": "client"}, rec: regularRecord("late", "10.40.0.6")},
	}
	nodeNS, err := ns.GetNS("/run/netns/" + node)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nodeNS.Close() }()
	for i, p := range pods {
		p.ns = fmt.Sprintf("pep%d-%s", i, sfx)
		path := clustertest.Netns(t, p.ns)
		if p.rec.Kind == podstate.KindBranch {
			fabricBranch(t, fabric, p.rec)
		}
		if err := nodeNS.Do(func(ns.NetNS) error {
			_, err := podnet.Add(path, p.rec, podnet.Options{MTU: 1400, Driver: podnet.VXLAN{Port: rigVXLAN}})
			return err
		}); err != nil {
			t.Fatalf("podnet.Add %s: %v", p.name, err)
		}
		for _, port := range []int{80, 81} {
			vpctest.ServeTCP(t, p.ns, net.JoinHostPort(p.rec.IP.String(), strconv.Itoa(port)))
		}
	}
	vpctest.ServeTCP(t, fabric, net.JoinHostPort(rigFabricIP, "80"))
	vpctest.ServeTCP(t, fabric, net.JoinHostPort(rigFabricIP, "81"))
	vpctest.ServeTCP(t, node, net.JoinHostPort(rigTrunkIP, "80"))

	in := policyenforce.Inputs{Namespaces: []*corev1.Namespace{namespace("default")}, NetworkPolicies: rigPolicies(),
		Nodes: []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: node}, Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: rigTrunkIP}}}}}}
	for _, p := range pods {
		in.Pods = append(in.Pods, pod("default", p.name, node, p.rec.IP.String(), p.labels))
	}
	cfg := policyenforce.Config{NodeName: node, PodInterfaces: []string{"eni*", podnet.StrictVethPrefix + "*"}, NotPodInterfaces: []string{"vlan.eth.*"}}
	e := policyenforce.New(cfg, newFakeSource(in), policyenforce.NFT{Netns: node}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})
	for _, p := range pods[:3] { // "late" is not admitted yet
		if err := e.Admit(ctx, policyenforce.LocalPod{Namespace: "default", Name: p.name, HostVeth: p.rec.HostVeth, IP: p.rec.IP}); err != nil {
			t.Fatal(err)
		}
	}
	client, strict, standard, late := pods[0], pods[1], pods[2], pods[3]
	type flow struct {
		name     string
		from, ip string // namespace and source address
		to       string
		port     int
		want     bool
	}
	flows := []flow{}
	for _, db := range []*rigPod{strict, standard} {
		mode := db.rec.Mode
		flows = append(flows,
			flow{"client->" + mode + " db:80 (admitted)", client.ns, "", db.rec.IP.String(), 80, true},
			flow{"client->" + mode + " db:81 (db's ingress isolation)", client.ns, "", db.rec.IP.String(), 81, false},
			flow{"fabric->" + mode + " db:80 (not the client)", fabric, "", db.rec.IP.String(), 80, false},
			flow{"node->" + mode + " db:81 (its own node: probes)", node, rigTrunkIP, db.rec.IP.String(), 81, true},
			flow{mode + " db->fabric:80 (egress allowed)", db.ns, "", rigFabricIP, 80, true},
			flow{mode + " db->fabric:81 (db's egress isolation)", db.ns, "", rigFabricIP, 81, false},
			flow{mode + " db->client:80 (db's egress isolation)", db.ns, "", client.rec.IP.String(), 80, false},
			flow{"late->" + mode + " db:80 (late is not known yet)", late.ns, "", db.rec.IP.String(), 80, false},
		)
	}
	// Services, as kube-proxy translates them (DNAT in prerouting at priority dstnat): judged
	// on the backend. The db pods' egress admits the fabric on 80 and not the client, whatever
	// the Service's own address.
	kubeProxy(t, node, map[string]string{"10.96.0.10": strict.rec.IP.String(), "10.96.0.11": standard.rec.IP.String(),
		"10.96.0.20": rigFabricIP, "10.96.0.21": client.rec.IP.String()})
	flows = append(flows,
		flow{"client->service of strict db:80", client.ns, "", "10.96.0.10", 80, true},
		flow{"client->service of strict db:81", client.ns, "", "10.96.0.10", 81, false},
		flow{"client->service of standard db:80", client.ns, "", "10.96.0.11", 80, true},
		flow{"client->service of standard db:81", client.ns, "", "10.96.0.11", 81, false},
		flow{"strict db->service of the fabric:80", strict.ns, "", "10.96.0.20", 80, true},
		flow{"standard db->service of the fabric:80", standard.ns, "", "10.96.0.20", 80, true},
		flow{"strict db->service of the client:80", strict.ns, "", "10.96.0.21", 80, false},
		flow{"standard db->service of the client:80", standard.ns, "", "10.96.0.21", 80, false},
	)
	flows = append(flows,
		flow{"fabric->client:81 (nothing isolates the client)", fabric, "", client.rec.IP.String(), 81, true},
		flow{"client->late:80 (late is not known yet)", client.ns, "", late.rec.IP.String(), 80, false},
		flow{"late->node:80 (late is not known yet)", late.ns, "", rigTrunkIP, 80, false},
	)
	probeAll(t, flows, func(f flow) (string, string, string, int, bool) {
		return f.name, f.from, f.ip + "|" + f.to, f.port, f.want
	})

	// Admitting late opens it: the ruleset now knows its veth, and the db pods its address.
	if err := e.Admit(ctx, policyenforce.LocalPod{Namespace: "default", Name: late.name, HostVeth: late.rec.HostVeth, IP: late.rec.IP}); err != nil {
		t.Fatal(err)
	}
	var after []flow
	for _, db := range []*rigPod{strict, standard} {
		after = append(after, flow{"late->" + db.rec.Mode + " db:80 (admitted)", late.ns, "", db.rec.IP.String(), 80, true})
	}
	after = append(after, flow{"client->late:80", client.ns, "", late.rec.IP.String(), 80, true})
	probeAll(t, after, func(f flow) (string, string, string, int, bool) {
		return f.name, f.from, f.ip + "|" + f.to, f.port, f.want
	})

	denied := e.Denied(ctx)
	if denied["default/db"] == 0 || denied[netpol.UnknownPodPolicy] == 0 {
		t.Errorf("denied packets by policy %v: want drops counted against default/db and the unknown pod", denied)
	}

	// The agent stops: the table stays and keeps enforcing. A new agent's first sync replaces
	// it in one transaction and carries its counts on.
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v", err)
	}
	done <- nil // for the cleanup
	stillDenied := []flow{{"client->strict db:81 with the agent stopped", client.ns, "", strict.rec.IP.String(), 81, false},
		{"client->standard db:80 with the agent stopped", client.ns, "", standard.rec.IP.String(), 80, true}}
	probeAll(t, stillDenied, func(f flow) (string, string, string, int, bool) {
		return f.name, f.from, f.ip + "|" + f.to, f.port, f.want
	})
	restarted := policyenforce.New(cfg, newFakeSource(in), policyenforce.NFT{Netns: node}, nil)
	for _, p := range pods {
		restarted.SetLocal(policyenforce.LocalPod{Namespace: "default", Name: p.name, HostVeth: p.rec.HostVeth, IP: p.rec.IP})
	}
	if err := restarted.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := restarted.Denied(context.Background()); got["default/db"] < denied["default/db"]+1 {
		t.Errorf("after the restart default/db counts %d drops, before it %d and one more while stopped", got["default/db"], denied["default/db"])
	}
	probeAll(t, stillDenied, func(f flow) (string, string, string, int, bool) {
		return f.name, f.from, f.ip + "|" + f.to, f.port, f.want
	})
	if t.Failed() {
		t.Log(clustertest.InNetns(t, node, "nft", "list", "table", "inet", netpol.NFTTable))
	}
}

// probeAll probes the flows in parallel and checks each verdict.
func probeAll[F any](t *testing.T, flows []F, parts func(F) (name, from, srcDst string, port int, want bool)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, f := range flows {
		name, from, srcDst, port, want := parts(f)
		src, dst, _ := strings.Cut(srcDst, "|")
		wg.Go(func() {
			got, err := vpctest.Probe(from, src, dst, "tcp", port, rigProbe)
			switch {
			case err != nil:
				t.Errorf("%s: the probe could not decide: %v", name, err)
			case got != want:
				t.Errorf("%s: packets allowed=%v, the policies say %v", name, got, want)
			}
		})
	}
	wg.Wait()
}

// rigPolicies: the db pods admit the client on 80, and reach the fabric's 10.99.0.0/24 on 80.
func rigPolicies() []*networkingv1.NetworkPolicy {
	p80 := intstr.FromInt32(80)
	return []*networkingv1.NetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &p80}}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.99.0.0/24"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &p80}}}}}}}
}

func regularRecord(name, ip string) *podstate.Record {
	return &podstate.Record{Version: podstate.Version, ContainerID: "c-" + name, IfName: "eth0", PodNamespace: "default", PodName: name,
		Kind: podstate.KindRegular, IP: netip.MustParseAddr(ip), HostVeth: podnet.HostVethName("eni", "default", name)}
}

// branchRecord is a branch pod's record as the agent writes it: host veth "vlan…" in strict
// mode, "eni…" in standard.
func branchRecord(name, ip string, vlan int, mac, mode string) *podstate.Record {
	prefix := "eni"
	if mode == podstate.ModeStrict {
		prefix = podnet.StrictVethPrefix
	}
	return &podstate.Record{Version: podstate.Version, ContainerID: "c-" + name, IfName: "eth0", PodNamespace: "default", PodName: name,
		Kind: podstate.KindBranch, IP: netip.MustParseAddr(ip), Gateway: netip.MustParseAddr(rigGateway),
		HostVeth: podnet.HostVethName(prefix, "default", name), VLAN: vlan, BranchMAC: mac,
		SubnetCIDR: rigSubnet, SubInterface: podnet.SubInterfaceName(vlan), TrunkLink: "trunk0",
		RouteTable: 100 + vlan, Mode: mode, TrunkGateway: netip.MustParseAddr(rigFabricIP)}
}

// kubeProxy translates each Service address to its backend, as kube-proxy's nftables mode does
// (a nat chain on prerouting at priority dstnat), in the node's namespace.
func kubeProxy(t *testing.T, node string, services map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("table ip kube-proxy {\n\tchain nat-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n")
	for svc, backend := range services {
		fmt.Fprintf(&b, "\t\tip daddr %s dnat to %s\n", svc, backend)
	}
	b.WriteString("\t}\n}\n")
	if err := (policyenforce.NFT{Netns: node}).Apply(context.Background(), b.String()); err != nil {
		t.Fatal(err)
	}
}

// fabricBranch gives the fabric the VPC's side of a branch ENI: the vxlan device of its VNI,
// answering for the subnet's gateway, and the route and neighbour of the ENI's address.
func fabricBranch(t *testing.T, fabric string, rec *podstate.Record) {
	t.Helper()
	dev := fmt.Sprintf("br%d", rec.VLAN)
	clustertest.InNetns(t, fabric, "ip", "link", "add", dev, "type", "vxlan", "id", strconv.Itoa(rec.VLAN), "local", rigFabricIP, "remote", rigTrunkIP, "dstport", strconv.Itoa(rigVXLAN), "dev", "fab-trunk")
	clustertest.InNetns(t, fabric, "ip", "addr", "add", rigGateway+"/32", "dev", dev)
	clustertest.InNetns(t, fabric, "ip", "link", "set", dev, "up")
	clustertest.InNetns(t, fabric, "ip", "route", "add", rec.IP.String()+"/32", "dev", dev)
	clustertest.InNetns(t, fabric, "ip", "neigh", "add", rec.IP.String(), "lladdr", rec.BranchMAC, "dev", dev, "nud", "permanent")
}
