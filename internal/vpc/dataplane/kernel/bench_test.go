package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
)

// synthetic builds a topology directly (no API): instances × enisPer ENIs
// in 10.76.0.0/16, all in group sg-s, which has rules ingress rules.
func synthetic(b *testing.B, instances, enisPer, rules int) (*Dataplane, *topo.Desired) {
	b.Helper()
	testenv.RequireRoot(b)
	buf := make([]byte, 3)
	_, _ = rand.Read(buf)
	id := "b" + hex.EncodeToString(buf)[:5]
	dp, err := New(Options{ID: id, Log: logr.Discard()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := Cleanup(id); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	})
	sg := &state.SecurityGroup{ID: "sg-s", VPCID: "vpc-b", Rules: []state.Rule{{ID: "sgr-e", Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"}}}
	for i := 0; i < rules-1; i++ { // rules that never match, then the one that does
		sg.Rules = append(sg.Rules, state.Rule{ID: fmt.Sprintf("sgr-%d", i), Protocol: "tcp", FromPort: int32(10000 + i), ToPort: int32(10000 + i), CIDR: "192.168.0.0/16"})
	}
	sg.Rules = append(sg.Rules, state.Rule{ID: "sgr-all", Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "10.76.0.0/16"})
	in := topo.Input{
		VPCs:    []*state.VPC{{ID: "vpc-b", CIDR: "10.76.0.0/16"}},
		Subnets: []*state.Subnet{{ID: "subnet-b", VPCID: "vpc-b", CIDR: "10.76.0.0/16"}},
		Groups:  []*state.SecurityGroup{sg},
	}
	n := 0
	for i := 0; i < instances; i++ {
		iid := fmt.Sprintf("i-%04d", i)
		in.Instances = append(in.Instances, &state.Instance{ID: iid, VPCID: "vpc-b", State: state.InstanceRunning, Type: "m5.large"})
		for d := 0; d < enisPer; d++ {
			n++
			in.ENIs = append(in.ENIs, &state.ENI{ID: fmt.Sprintf("eni-%05d", n), VPCID: "vpc-b", SubnetID: "subnet-b",
				MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", n>>8, n&0xff), PrivateIPs: []string{fmt.Sprintf("10.76.%d.%d", 1+n/250, 1+n%250)},
				Groups: []string{"sg-s"}, SourceDestCheck: true, Attachment: &state.Attachment{InstanceID: iid, DeviceIndex: d}})
		}
	}
	return dp, topo.BuildFrom(dp.names, in)
}

// BenchmarkConverge500ENIs: building 125 instances × 4 ENIs from nothing,
// and a steady-state Apply that has nothing to change.
func BenchmarkConverge500ENIs(b *testing.B) {
	dp, des := synthetic(b, 125, 4, 1)
	ctx := context.Background()
	b.Run("cold", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			if err := Cleanup(dp.names.ID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			if err := dp.converge(ctx, des); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("steady", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := dp.converge(ctx, des); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkThroughput: iperf3 TCP between two instances through the fabric
// with 1 and 1,000 rules in the receiver's group, against a bare veth pair.
// Established flows skip the rule chains, so rules cost only the first
// packet of each connection.
func BenchmarkThroughput(b *testing.B) {
	testenv.Require(b, testenv.IPerf3)
	b.Run("bare-veth", func(b *testing.B) {
		testenv.RequireRoot(b)
		c, s := "podsgbench-c", "podsgbench-s"
		for _, ns := range []string{c, s} {
			if err := namespace.Create(ns); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = namespace.Delete(ns) })
		}
		h, _ := namespace.Handle(c)
		defer h.Close()
		hs, _ := namespace.Handle(s)
		defer hs.Close()
		f, _ := namespace.Open(s)
		defer f.Close()
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.MTU = "eth0", topo.ENIMTU
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(f.Fd())), PeerMTU: topo.ENIMTU}); err != nil {
			b.Fatal(err)
		}
		for i, hh := range []*netlink.Handle{h, hs} {
			l, _ := hh.LinkByName("eth0")
			_ = hh.AddrAdd(l, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 77, 0, byte(1+i)), Mask: net.CIDRMask(24, 32)}})
			_ = hh.LinkSetUp(l)
			lo, _ := hh.LinkByName("lo")
			_ = hh.LinkSetUp(lo)
		}
		iperf(b, c, s, "10.77.0.2")
	})
	for _, rules := range []int{1, 1000} {
		b.Run(fmt.Sprintf("sg-%d-rules", rules), func(b *testing.B) {
			dp, des := synthetic(b, 2, 1, rules)
			if err := dp.converge(context.Background(), des); err != nil {
				b.Fatal(err)
			}
			iperf(b, des.Instances[0].Namespace, des.Instances[1].Namespace, des.Instances[1].Ports[0].IPs[0].String())
		})
	}
}

func iperf(b *testing.B, client, server, addr string) {
	b.Helper()
	srv := exec.Command("iperf3", "-s", "-B", addr)
	if err := namespace.Start(server, srv); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	var bps float64
	// Retry while the server is still starting (the client then fails or
	// reports nothing).
	testenv.Eventually(b, 3*time.Second, func(context.Context) error {
		out, err := exec.Command("ip", "netns", "exec", client, "iperf3", "-c", addr, "-t", "2", "-J").Output()
		if err != nil {
			return fmt.Errorf("iperf3: %w: %s", err, out)
		}
		var res struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal(out, &res); err != nil {
			return fmt.Errorf("decoding iperf3 output: %w", err)
		}
		if bps = res.End.SumReceived.BitsPerSecond; bps == 0 {
			return fmt.Errorf("iperf3 measured nothing: %s", out)
		}
		return nil
	})
	b.ReportMetric(bps/1e9, "Gbit/s")
}
