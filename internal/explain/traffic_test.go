package explain

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/reach"
)

// sgCluster is EKS's cluster security group: the nodes' primary ENIs, and so the regular
// CoreDNS pods on their secondary addresses, carry it.
const sgCluster = "sg-0c1c1c1c1c1c1c1c1"

func rule(group string, egress bool, proto string, port int32, peerGroup string) cloud.SecurityGroupRule {
	r := cloud.SecurityGroupRule{GroupID: group, Egress: egress, Protocol: proto, FromPort: port, ToPort: port, ReferencedGroupID: peerGroup}
	if proto == cloud.ProtocolAll {
		r.FromPort, r.ToPort = -1, -1
	}
	if peerGroup == "" {
		r.CIDR = "0.0.0.0/0"
	}
	return r
}

// egressAll is the rule every new group has.
func egressAll(group string) cloud.SecurityGroupRule {
	return rule(group, true, cloud.ProtocolAll, 0, "")
}

var (
	branchENI = cloud.NetworkInterface{ID: "eni-0b1", Type: cloud.InterfaceTypeBranch, PrivateIP: "10.0.0.12", SecurityGroups: []string{sgA, sgB}}
	// nodeENI is the primary ENI of the pod's node; CoreDNS runs on a secondary address of another node's.
	nodeENI    = cloud.NetworkInterface{ID: "eni-0n1", Type: cloud.InterfaceTypeInterface, PrivateIP: "10.0.0.5", InstanceID: "i-0123456789abcdef0", SecurityGroups: []string{sgCluster}}
	coreDNSENI = cloud.NetworkInterface{ID: "eni-0n2", Type: cloud.InterfaceTypeInterface, PrivateIP: "10.0.32.4", SecondaryIPs: []string{"10.0.32.9"},
		InstanceID: "i-0fedcba9876543210", SecurityGroups: []string{sgCluster}}
)

// seedGroups are the seed tutorial's groups: sgA and sgB (the pod's) egress anywhere, the
// cluster group admits its own members only. extra rules are added to them.
func seedGroups(extra ...cloud.SecurityGroupRule) map[string]reach.Group {
	g := map[string]reach.Group{
		sgA:       {ID: sgA, Rules: []cloud.SecurityGroupRule{egressAll(sgA), rule(sgA, false, cloud.ProtocolTCP, 5432, sgB)}},
		sgB:       {ID: sgB, Rules: []cloud.SecurityGroupRule{egressAll(sgB)}},
		sgCluster: {ID: sgCluster, Rules: []cloud.SecurityGroupRule{egressAll(sgCluster), rule(sgCluster, false, cloud.ProtocolAll, 0, sgCluster)}},
	}
	for _, r := range extra {
		x := g[r.GroupID]
		x.Rules = append(x.Rules, r)
		g[r.GroupID] = x
	}
	return g
}

func endpoint(ip string, eni cloud.NetworkInterface) reach.Endpoint {
	return reach.Endpoint{Spec: ip, IP: netip.MustParseAddr(ip), ENI: eni}
}

// withTraffic adds the DNS path to one CoreDNS pod and the kubelet's path, over groups.
func withTraffic(r *Report, groups map[string]reach.Group, probes ...Probe) *Report {
	pod := endpoint("10.0.0.12", branchENI)
	r.Pod.Probes = probes
	r.Traffic = &Traffic{
		DNS:     []DNSPath{{Resolver: "kube-system/coredns-1", Input: reach.Input{Src: pod, Dst: endpoint("10.0.32.9", coreDNSENI), Groups: groups}}},
		Kubelet: &reach.Input{Src: endpoint("10.0.0.5", nodeENI), Dst: pod, Groups: groups},
	}
	return r
}

var readiness8080 = Probe{Container: "app", Kind: "readiness", Handler: "httpGet", Port: 8080}

func TestTrafficFindings(t *testing.T) {
	dnsFrom := func(g string) []cloud.SecurityGroupRule {
		return []cloud.SecurityGroupRule{rule(sgCluster, false, cloud.ProtocolUDP, 53, g), rule(sgCluster, false, cloud.ProtocolTCP, 53, g)}
	}
	probeRule := rule(sgA, false, cloud.ProtocolTCP, 8080, sgCluster)
	tests := map[string]struct {
		report *Report
		want   []string // fragments of the problems, one a finding; none: no traffic finding
	}{
		"no EC2, nothing checked": {report: allocated()},
		"cluster group lacks the DNS rule": {report: withTraffic(withEC2(allocated()), seedGroups()),
			want: []string{"DNS is blocked from the pod (10.0.0.12 on eni-0b1) to CoreDNS pod kube-system/coredns-1 (10.0.32.9 on eni-0n2): " +
				"its groups [" + sgCluster + "] admit no udp 53, tcp 53 from the pod, so the pod cannot resolve names"}},
		"cluster group admits DNS from the pod's group": {report: withTraffic(withEC2(allocated()), seedGroups(dnsFrom(sgA)...))},
		"only udp admitted": {report: withTraffic(withEC2(allocated()), seedGroups(dnsFrom(sgA)[0])),
			want: []string{"admit no tcp 53 from the pod"}},
		"pod's groups allow no DNS egress": {report: withTraffic(withEC2(allocated()), withoutEgress(seedGroups(dnsFrom(sgB)...), sgA, sgB)),
			want: []string{"the pod's groups [" + sgA + " " + sgB + "] allow no egress of udp 53, tcp 53 to it"}},
		"probe port not admitted": {report: withTraffic(withEC2(allocated()), seedGroups(dnsFrom(sgA)...), readiness8080),
			want: []string{"The readiness probe of container app (httpGet, tcp 8080) comes from the kubelet at the node's address 10.0.0.5 (eni-0n1): " +
				"the pod's groups [" + sgA + " " + sgB + "] admit no tcp 8080 from the node, so the probe fails"}},
		"probe port admitted from the cluster group": {report: withTraffic(withEC2(allocated()), seedGroups(append(dnsFrom(sgA), probeRule)...), readiness8080)},
		"probe admitted, another not": {report: withTraffic(withEC2(allocated()), seedGroups(append(dnsFrom(sgA), probeRule)...), readiness8080,
			Probe{Container: "app", Kind: "liveness", Handler: "tcpSocket", Port: 9090}),
			want: []string{"The liveness probe of container app (tcpSocket, tcp 9090)"}},
		"named port the container lacks": {report: withTraffic(withEC2(allocated()), seedGroups(dnsFrom(sgA)...), Probe{Container: "app", Kind: "startup", Handler: "grpc", PortName: "health"}),
			want: []string{`The startup probe of container app (grpc, port "health") names no port of the container`}},
		"resolver not found": {report: func() *Report {
			r := withTraffic(withEC2(allocated()), seedGroups())
			r.Traffic.DNS, r.Traffic.DNSErr = nil, "the cluster has no Service kube-system/kube-dns"
			return r
		}(), want: []string{"DNS from the pod could not be checked: the cluster has no Service kube-system/kube-dns."}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := trafficFindings(tc.report)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d: %+v", len(got), len(tc.want), got)
			}
			for i, w := range tc.want {
				if !got[i].Problem || !strings.Contains(got[i].Text, w) {
					t.Errorf("finding %d: got %+v, want a problem containing %q", i, got[i], w)
				}
			}
			// Diagnose, and so `podsg explain pod`, says the same.
			diag := Diagnose(tc.report)
			for _, w := range tc.want {
				if !containsFinding(diag, w) {
					t.Errorf("Diagnose lacks %q", w)
				}
			}
		})
	}
}

func containsFinding(fs []Finding, text string) bool {
	for _, f := range fs {
		if strings.Contains(f.Text, text) {
			return true
		}
	}
	return false
}

// withoutEgress drops the egress rules of the named groups.
func withoutEgress(g map[string]reach.Group, ids ...string) map[string]reach.Group {
	for _, id := range ids {
		x := g[id]
		var kept []cloud.SecurityGroupRule
		for _, r := range x.Rules {
			if !r.Egress {
				kept = append(kept, r)
			}
		}
		x.Rules = kept
		g[id] = x
	}
	return g
}

func TestProbes(t *testing.T) {
	c := corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("http")}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9090)}}},
		StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}
	side := corev1.Container{Name: "side", LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 7000}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromString("nope")}}}}
	elsewhere := corev1.Container{Name: "elsewhere",
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Host: "10.0.9.9", Port: intstr.FromInt32(80)}}}}
	always := corev1.ContainerRestartPolicyAlways
	sidecar := corev1.Container{Name: "proxy", RestartPolicy: &always,
		StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(15021)}}}}
	initOnce := corev1.Container{Name: "init", ReadinessProbe: sidecar.StartupProbe}
	got := probes(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{c, side, elsewhere}, InitContainers: []corev1.Container{initOnce, sidecar}}})
	want := []Probe{
		{Container: "app", Kind: "liveness", Handler: "httpGet", Port: 8080, PortName: "http"},
		{Container: "app", Kind: "readiness", Handler: "tcpSocket", Port: 9090},
		{Container: "side", Kind: "liveness", Handler: "grpc", Port: 7000},
		{Container: "side", Kind: "readiness", Handler: "httpGet", PortName: "nope"},
		{Container: "proxy", Kind: "startup", Handler: "tcpSocket", Port: 15021},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("probe %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
