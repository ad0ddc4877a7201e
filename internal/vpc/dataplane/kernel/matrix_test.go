package kernel

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestReachabilityMatrix: three instances with different groups; TCP,
// UDP and ICMP pass exactly as the rules say, including group references,
// egress restrictions, port ranges and return traffic; a revoked rule
// stops new connections at once; a restart changes nothing.
func TestReachabilityMatrix(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.71.0.0/16")
	sub1, sub2 := e.subnet(vpc, "10.71.1.0/24"), e.subnet(vpc, "10.71.2.0/24")
	sgA, sgB, sgS := e.group(vpc, "a"), e.group(vpc, "b"), e.group(vpc, "s")
	e.ingress(sgS, "tcp", 8000, 8010, sgA)            // group reference + port range
	e.ingress(sgS, "udp", 9000, 9000, "10.71.2.0/24") // CIDR: sub2 (B), not sub1 (A)
	e.ingress(sgS, "icmp", 8, -1, sgA)                // echo request only
	e.ingress(sgS, "tcp", 8020, 8020, sgB)
	// B may only send TCP 8000 anywhere and UDP 9000 to S.
	if _, err := e.ec2.RevokeSecurityGroupEgress(context.Background(), &ec2.RevokeSecurityGroupEgressInput{
		GroupId: aws.String(sgB), IpPermissions: []types.IpPermission{vpctest.Permission("-1", -1, -1, "0.0.0.0/0")},
	}); err != nil {
		t.Fatalf("RevokeSecurityGroupEgress: %v", err)
	}
	e.egress(sgB, "tcp", 8000, 8000, "0.0.0.0/0")
	e.egress(sgB, "udp", 9000, 9000, sgS)

	a, ipA := e.instance(sub1, sgA)
	b, _ := e.instance(sub2, sgB)
	s, ipS := e.instance(sub1, sgS)
	nsA, nsB, nsS := e.dp.names.Instance(a), e.dp.names.Instance(b), e.dp.names.Instance(s)
	for _, port := range []string{"7999", "8000", "8005", "8010", "8011", "8020"} {
		vpctest.ServeTCP(t, nsS, net.JoinHostPort(ipS, port))
	}
	vpctest.ServeUDP(t, nsS, net.JoinHostPort(ipS, "9000"))
	vpctest.ServeTCP(t, nsA, net.JoinHostPort(ipA, "8000"))
	expectNoRootEscape(t, ipS)

	tcp := func(ns, ip, port string) func() error {
		return func() error { return tcpProbe(ns, net.JoinHostPort(ip, port)) }
	}
	udp := func(ns, ip string) func() error {
		return func() error { return udpProbe(ns, net.JoinHostPort(ip, "9000")) }
	}
	ping := func(ns, ip string) func() error { return func() error { return pingProbe(ns, ip) } }
	matrix := []probe{
		{"A->S tcp 8000 (group ref)", tcp(nsA, ipS, "8000"), true},
		{"A->S tcp 8010 (range end)", tcp(nsA, ipS, "8010"), true},
		{"A->S tcp 7999 (below range)", tcp(nsA, ipS, "7999"), false},
		{"A->S tcp 8011 (above range)", tcp(nsA, ipS, "8011"), false},
		{"B->S tcp 8000 (not in group)", tcp(nsB, ipS, "8000"), false},
		{"B->S tcp 8020 (egress denies)", tcp(nsB, ipS, "8020"), false},
		{"B->S udp 9000 (cidr)", udp(nsB, ipS), true},
		{"A->S udp 9000 (outside cidr)", udp(nsA, ipS), false},
		{"A->S icmp echo", ping(nsA, ipS), true},
		{"B->S icmp", ping(nsB, ipS), false},
		{"S->A tcp 8000 (no ingress on A)", tcp(nsS, ipA, "8000"), false},
	}
	expectProbes(t, matrix)
	flowsBefore, err := e.dp.Flows()
	if err != nil {
		t.Fatalf("flows: %v", err)
	}
	// The decisions were the fabric's: S's ingress counted both accepts
	// and default-deny drops.
	var accepted, denied uint64
	for _, f := range flowsBefore {
		if f.Direction == "ingress" && f.GroupID == sgS && f.Verdict == "accept" {
			accepted += f.Packets
		}
		if f.Direction == "ingress" && f.Rule == "default-deny" && f.Verdict == "drop" {
			denied += f.Packets
		}
	}
	if accepted == 0 || denied == 0 {
		t.Errorf("flow counters: accepted %d, denied %d packets; want both > 0: %+v", accepted, denied, flowsBefore)
	}

	// Restart: same decisions, nothing duplicated.
	linksBefore := linkCount(t, e.dp.names.Fabric(vpc))
	e.reopen()
	if got := linkCount(t, e.dp.names.Fabric(vpc)); got != linksBefore {
		t.Errorf("fabric links after restart = %d, want %d", got, linksBefore)
	}
	flowsAfter, err := e.dp.Flows()
	if err != nil {
		t.Fatalf("flows: %v", err)
	}
	if len(flowsAfter) != len(flowsBefore) {
		t.Errorf("counted rules after restart = %d, want %d", len(flowsAfter), len(flowsBefore))
	}
	expectProbes(t, matrix)

	// Revoking A's TCP rule stops new connections within a second.
	if _, err := e.ec2.RevokeSecurityGroupIngress(context.Background(), &ec2.RevokeSecurityGroupIngressInput{
		GroupId: aws.String(sgS), IpPermissions: []types.IpPermission{vpctest.Permission("tcp", 8000, 8010, sgA)},
	}); err != nil {
		t.Fatalf("RevokeSecurityGroupIngress: %v", err)
	}
	testenv.Eventually(t, time.Second, func(context.Context) error {
		if tcpProbe(nsA, net.JoinHostPort(ipS, "8000")) == nil {
			return errors.New("A->S tcp 8000 still allowed after the revoke")
		}
		return nil
	})
}

func linkCount(t testing.TB, ns string) int {
	t.Helper()
	h, err := namespace.Handle(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	return len(links)
}
