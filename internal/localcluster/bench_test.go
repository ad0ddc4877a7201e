package localcluster_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/miekg/dns"

	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/testenv"
)

// dnsQueries is how many queries the DNS latency is measured over, one at a time.
const dnsQueries = 200

// BenchmarkLocalCluster measures, with the Kubernetes binaries cached and podsg installed
// in-cluster (the default), for 1 and 3 nodes: `podsg local up` to every node Ready (CoreDNS
// and podsg rolled out, as up waits for them), pod creation to Running for a branch-ENI pod
// and a regular pod, and the latency of DNS queries from the branch pod to kube-dns (p50, p99
// over dnsQueries A queries of kubernetes.default.svc.cluster.local).
func BenchmarkLocalCluster(b *testing.B) {
	testenv.RequireRoot(b)
	kubeBin := testenv.KubeBinDir(b)
	var binDir string
	for _, bin := range []string{"podsg-vpc", "podsg-controller", "podsg-agent", "podsg-cni", "pgcheck"} {
		binDir = filepath.Dir(testenv.Build(b, "github.com/podsg/podsg/cmd/"+bin))
	}
	for _, nodes := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes=%d", nodes), func(b *testing.B) {
			benchLocalCluster(b, localcluster.Options{Nodes: nodes, KubeBinDir: kubeBin, BinDir: binDir})
		})
	}
}

func benchLocalCluster(b *testing.B, o localcluster.Options) {
	dir, err := os.MkdirTemp("/var/lib", "pbench-")
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		b.Fatal(err)
	}
	o.StateDir = filepath.Join(dir, "local")
	b.Cleanup(func() {
		// The state dir stays when down fails: `podsg local down --state-dir` can retry.
		if err := localcluster.Down(context.WithoutCancel(b.Context()), o, os.Stderr); err != nil {
			b.Errorf("podsg local down: %v", err)
			return
		}
		_ = os.RemoveAll(dir)
	})
	kubectl := func(stdin string, args ...string) string {
		b.Helper()
		cmd := exec.Command(filepath.Join(o.KubeBinDir, "kubectl"), append([]string{"--kubeconfig=" + o.Kubeconfig()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	for range b.N {
		start := time.Now()
		if err := localcluster.Up(b.Context(), o, os.Stderr); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-up-to-ready")
		// Up returns once the nodes are Ready; check it rather than trust it.
		kubectl("", "wait", "--for=condition=Ready", "node", "--all", "--timeout=10s")
		if n := len(strings.Fields(kubectl("", "get", "nodes", "-o", "name"))); n != o.Nodes {
			b.Fatalf("%d nodes, want %d", n, o.Nodes)
		}
		// The cluster group admits itself, so DNS from the branch pod to CoreDNS is allowed.
		policy := "apiVersion: vpcresources.k8s.aws/v1beta1\nkind: SecurityGroupPolicy\nmetadata: {name: bench, namespace: default}\n" +
			"spec:\n  podSelector: {matchLabels: {sg: branch}}\n  securityGroups:\n    groupIds: [" + clusterSG(b, o) + "]\n"
		kubectl(policy, "apply", "-f", "-")
		for _, kind := range []string{"regular", "branch"} {
			start := time.Now()
			kubectl("", "run", "bench-"+kind, "--labels=sg="+kind, "--image=podsg.local/busybox:latest", "--image-pull-policy=IfNotPresent",
				"--restart=Never", "--command", "--", "sleep", "3600")
			kubectl("", "wait", "--for=condition=Ready", "pod/bench-"+kind, "--timeout=120s")
			b.ReportMetric(time.Since(start).Seconds(), "s-"+kind+"-pod-running")
		}
		if eni := kubectl("", "get", "pod", "bench-branch", "-o", `jsonpath={.metadata.annotations.vpc\.amazonaws\.com/pod-eni}`); eni == "" {
			b.Fatal("pod bench-branch has no branch ENI")
		}
		want := strings.TrimSpace(kubectl("", "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"))
		uid := strings.TrimSpace(kubectl("", "get", "pod", "bench-branch", "-o", "jsonpath={.metadata.uid}"))
		p50, p99 := dnsLatency(b, uid, want)
		b.ReportMetric(float64(p50.Microseconds())/1000, "ms-dns-p50")
		b.ReportMetric(float64(p99.Microseconds())/1000, "ms-dns-p99")
		kubectl("", "delete", "pod", "bench-regular", "bench-branch", "--wait=true")
		kubectl("", "delete", "sgp", "bench")
	}
}

// dnsLatency sends dnsQueries A queries for kubernetes.default.svc.cluster.local, one at a
// time, from the network namespace of the pod with uid to kube-dns's ClusterIP (as the pod's
// resolv.conf says), and returns the p50 and p99 round trip. The socket is made in the pod's
// namespace and stays there: the queries are the pod's, through its branch ENI and its groups.
func dnsLatency(b *testing.B, uid, want string) (p50, p99 time.Duration) {
	b.Helper()
	pid := podPid(b, uid)
	var conn *net.UDPConn
	err := ns.WithNetNSPath(fmt.Sprintf("/proc/%d/ns/net", pid), func(ns.NetNS) error {
		var err error
		conn, err = net.DialUDP("udp", nil, &net.UDPAddr{IP: net.ParseIP(localcluster.ClusterDNSIP), Port: 53})
		return err
	})
	if err != nil {
		b.Fatalf("opening a UDP socket in pod %s's namespace: %v", uid, err)
	}
	defer conn.Close()
	client := dns.Client{Net: "udp", Timeout: 5 * time.Second}
	rtts := make([]time.Duration, 0, dnsQueries)
	for i := range dnsQueries {
		m := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
		r, rtt, err := client.ExchangeWithConnContext(b.Context(), m, &dns.Conn{Conn: conn})
		if err != nil {
			b.Fatalf("query %d: %v", i, err)
		}
		if a, ok := firstA(r); !ok || a != want {
			b.Fatalf("query %d answered %v, want %s", i, r.Answer, want)
		}
		rtts = append(rtts, rtt)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2], rtts[len(rtts)*99/100]
}

func firstA(r *dns.Msg) (string, bool) {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String(), true
		}
	}
	return "", false
}

// podPid finds a process of the pod with uid (its sandbox or a container) by its cgroup, which
// the kubelet names pod<uid>.
func podPid(b *testing.B, uid string) int {
	b.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cg, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err == nil && strings.Contains(string(cg), "/pod"+uid+"/") {
			return pid
		}
	}
	b.Fatalf("no process of pod %s", uid)
	return 0
}

// clusterSG returns the cluster security group, the one every node is in.
func clusterSG(b *testing.B, _ localcluster.Options) string {
	b.Helper()
	name := "eks-cluster-sg-" + localcluster.ClusterName
	out, err := localcluster.EC2Client().DescribeSecurityGroups(b.Context(), &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil || len(out.SecurityGroups) == 0 {
		b.Fatalf("finding the cluster security group: %v", err)
	}
	return aws.ToString(out.SecurityGroups[0].GroupId)
}
