package policyenforce_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
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
	"github.com/podsg/podsg/internal/policyenforce"
	"github.com/podsg/podsg/internal/testenv"
	dpnetns "github.com/podsg/podsg/internal/vpc/dataplane/namespace"
)

// The data path rig: two regular pods built by podnet.Add (as the CNI ADD builds them) behind
// one node namespace, whose podsg_netpol table the enforcer fills. Nothing leaves the three
// namespaces: the pods reach each other through the node, and nothing routes to the root
// namespace.
//
//	client 10.60.0.2 ── eni… ── node ── eni… ── server 10.60.0.3
const (
	dpClientIP  = "10.60.0.2"
	dpServerIP  = "10.60.0.3"
	dpMTU       = 9001 // an ENI's
	dpIPerfPort = 5201 // iperf3's default
	dpConnPort  = 8080
	// dpConns bounds the connect/accept loop: connections per configuration and round.
	dpConns = 1000
	// dpRounds: how many times the configurations take turns.
	dpRounds = 7
)

// BenchmarkPolicyDatapath: TCP throughput (iperf3, 3 s, once per configuration) and the rate
// of new connections (a Go connect/accept loop of dpConns connections, one at a time, in each
// of dpRounds rounds; the median round is reported) from one pod to another through the node,
// with:
//   - no-table: no podsg_netpol table at all (the kernel's own forwarding);
//   - no-policy: the table the agent installs when no policy selects the pods;
//   - 1000-rules: 1,000 NetworkPolicies select the server, each admitting one other /32 on
//     the loop's port, and the last by name (the rules are in policy name order) admits the
//     client on every port: each SYN to the server crosses 999 rules of its ingress chain
//     before the one that accepts it (the worst case for a chain of rules). The server's
//     egress and the client's are free.
//
// Established packets are accepted by the first rule of the forward chain (ct state
// established), so the rules cost new connections, not bytes: the throughput should not move,
// the connection rate may.
func BenchmarkPolicyDatapath(b *testing.B) {
	testenv.RequireRoot(b)
	testenv.Require(b, testenv.IPRoute2, testenv.NFTables, testenv.IPerf3)
	sfx := clustertest.Suffix(b)
	node, client, server := "pdn-"+sfx, "pdc-"+sfx, "pds-"+sfx
	clustertest.Netns(b, node)
	clustertest.InNetns(b, node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	nodeNS, err := ns.GetNS("/run/netns/" + node)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = nodeNS.Close() }()
	recs := map[string]string{client: dpClientIP, server: dpServerIP}
	var local []policyenforce.LocalPod
	for _, name := range []string{client, server} {
		path := clustertest.Netns(b, name)
		rec := regularRecord(name, recs[name])
		if err := nodeNS.Do(func(ns.NetNS) error {
			_, err := podnet.Add(path, rec, podnet.Options{MTU: dpMTU})
			return err
		}); err != nil {
			b.Fatalf("podnet.Add %s: %v", name, err)
		}
		local = append(local, policyenforce.LocalPod{Namespace: "default", Name: name, HostVeth: rec.HostVeth, IP: rec.IP})
	}
	for _, pod := range []string{client, server} {
		peer := map[string]string{client: dpServerIP, server: dpClientIP}[pod]
		if dev := clustertest.RouteVia(b, pod, peer); dev != "eth0" {
			b.Fatalf("%s routes %s through %s, not its eth0", pod, peer, dev)
		}
	}
	stop := serveConnections(b, server, net.JoinHostPort(dpServerIP, strconv.Itoa(dpConnPort)))
	defer stop()

	in := policyenforce.Inputs{Namespaces: []*corev1.Namespace{namespace("default")},
		Nodes: []*corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: node}, Status: corev1.NodeStatus{
			Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.60.255.1"}}}}},
		Pods: []*corev1.Pod{pod("default", client, node, dpClientIP, map[string]string{"app": "client"}),
			pod("default", server, node, dpServerIP, map[string]string{"app": "server"})}}
	cfg := policyenforce.Config{NodeName: node, PodInterfaces: []string{"eni*"}}
	// Each configuration is one way to leave the node's table.
	type config struct {
		name  string
		set   func(b *testing.B)
		rules int // accepting rules its table holds
	}
	var configs []*config
	configs = append(configs, &config{name: "no-table", set: func(b *testing.B) {
		clustertest.InNetns(b, node, "nft", "flush", "ruleset")
	}})
	for _, c := range []struct {
		name     string
		policies []*networkingv1.NetworkPolicy
	}{{"no-policy", nil}, {"1000-rules", ruleChain(1000)}} {
		in := in
		in.NetworkPolicies = c.policies
		e := policyenforce.New(cfg, newFakeSource(in), policyenforce.NFT{Netns: node}, nil)
		for _, lp := range local {
			e.SetLocal(lp)
		}
		cf := &config{name: c.name}
		cf.set = func(b *testing.B) {
			if err := e.Sync(context.Background()); err != nil {
				b.Fatal(err)
			}
			listed := clustertest.InNetns(b, node, "nft", "list", "table", "inet", netpol.NFTTable)
			if cf.rules = strings.Count(listed, " return comment "); cf.rules < len(c.policies) {
				b.Fatalf("the table holds %d accepting rules, want at least %d:\n%s", cf.rules, len(c.policies), listed)
			}
		}
		configs = append(configs, cf)
	}

	// The machine's load drifts (other work shares it): the configurations take turns, round
	// after round, and each reports its median; the rules' cost is the median of each round's
	// difference between 1000-rules and no-policy.
	perConn := map[string][]time.Duration{}
	gbps := map[string]float64{}
	for b.Loop() {
		for round := range dpRounds {
			for _, c := range configs {
				c.set(b)
				if round == 0 { // throughput: established packets, one measurement each
					if _, err := dialLoop(client, dpServerIP, 1); err != nil {
						b.Fatalf("%s: the client does not reach the server: %v", c.name, err)
					}
					g, err := iperf3(server, client, dpServerIP)
					if err != nil {
						b.Fatalf("%s: %v", c.name, err)
					}
					gbps[c.name] = g
				}
				took, err := dialLoop(client, dpServerIP, dpConns)
				if err != nil {
					b.Fatalf("%s: %v", c.name, err)
				}
				perConn[c.name] = append(perConn[c.name], took/dpConns)
			}
		}
	}
	for _, c := range configs {
		med := median(perConn[c.name])
		b.ReportMetric(gbps[c.name], c.name+"-Gbit/s")
		b.ReportMetric(1/med.Seconds(), c.name+"-conn/s")
		b.ReportMetric(float64(c.rules), c.name+"-accept-rules")
	}
	var diff []time.Duration
	for i := range perConn["no-policy"] {
		diff = append(diff, perConn["1000-rules"][i]-perConn["no-policy"][i])
	}
	b.ReportMetric(float64(median(diff).Nanoseconds())/1000, "1000-rules-extra-µs/conn")
}

// median of samples (the lower middle one of an even count).
func median(samples []time.Duration) time.Duration {
	s := slices.Clone(samples)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// ruleChain is n policies selecting app=server for ingress, each admitting one address (none
// the client's) on the benchmark's ports, and a last one, by name, admitting app=client.
func ruleChain(n int) []*networkingv1.NetworkPolicy {
	ports := []networkingv1.NetworkPolicyPort{{Port: ptr(intstr.FromInt32(dpConnPort))}}
	server := metav1.LabelSelector{MatchLabels: map[string]string{"app": "server"}}
	var out []*networkingv1.NetworkPolicy
	for i := range n {
		rule := networkingv1.NetworkPolicyIngressRule{Ports: ports,
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: fmt.Sprintf("172.16.%d.%d/32", i/250, i%250+1)}}}}
		if i == n-1 { // every port: iperf3's too
			rule = networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "client"}}}}}
		}
		out = append(out, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("rule-%04d", i)},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: server, PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
				Ingress: []networkingv1.NetworkPolicyIngressRule{rule}}})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// serveConnections accepts every connection to addr inside the namespace and closes it at
// once; stop ends it.
func serveConnections(b *testing.B, netns, addr string) (stop func()) {
	b.Helper()
	var ln net.Listener
	if err := dpnetns.Do(netns, func() (err error) {
		lc := net.ListenConfig{}
		ln, err = lc.Listen(context.Background(), "tcp", addr)
		return err
	}); err != nil {
		b.Fatalf("listening on %s in %s: %v", addr, netns, err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return func() { _ = ln.Close() }
}

// dialLoop opens n connections to the server, one after the other, from inside the
// namespace, each waiting for the server's close (so each is a full handshake and teardown
// through the node), and returns the time they took.
func dialLoop(netns, server string, n int) (time.Duration, error) {
	var took time.Duration
	err := dpnetns.Do(netns, func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		addr := net.JoinHostPort(server, strconv.Itoa(dpConnPort))
		began := time.Now()
		for i := range n {
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return fmt.Errorf("connection %d of %d: %w", i+1, n, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Read(make([]byte, 1))
			_ = c.Close()
			if !errors.Is(err, io.EOF) {
				return fmt.Errorf("connection %d of %d: want the server's close, got %w", i+1, n, err)
			}
		}
		took = time.Since(began)
		return nil
	})
	return took, err
}

// iperf3 measures TCP throughput from the client namespace to an iperf3 server in the server
// namespace, in Gbit/s, over 3 s.
func iperf3(server, client, addr string) (float64, error) {
	srv := exec.Command("ip", "netns", "exec", server, "iperf3", "-s", "-1", "-B", addr, "-p", strconv.Itoa(dpIPerfPort))
	srv.Stdout, srv.Stderr = io.Discard, os.Stderr
	if err := srv.Start(); err != nil {
		return 0, fmt.Errorf("starting iperf3 -s: %w", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	// Wait until the server listens (a client that came earlier would be refused, and one
	// iperf3 -s -1 serves exactly one client).
	port := ":" + strconv.Itoa(dpIPerfPort)
	for deadline := time.Now().Add(5 * time.Second); ; {
		out, err := exec.Command("ip", "netns", "exec", server, "ss", "-Hltn", "sport", "=", port).Output()
		if err != nil {
			return 0, fmt.Errorf("ss in %s: %w", server, err)
		}
		if strings.Contains(string(out), port) {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("iperf3 -s is not listening on %s%s after 5 s", addr, port)
		}
	}
	out, err := exec.Command("ip", "netns", "exec", client, "iperf3", "-c", addr, "-p", strconv.Itoa(dpIPerfPort), "-t", "3", "-J").Output()
	if err != nil {
		return 0, fmt.Errorf("iperf3 -c: %w: %s", err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return 0, fmt.Errorf("reading iperf3's report: %w", err)
	}
	if res.End.SumReceived.BitsPerSecond == 0 {
		return 0, fmt.Errorf("iperf3 measured nothing: %s", out)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9, nil
}
