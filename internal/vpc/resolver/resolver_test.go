package resolver

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
)

func TestAddress(t *testing.T) {
	for cidr, want := range map[string]string{"10.0.0.0/16": "10.0.0.2", "192.168.64.0/18": "192.168.64.2", "172.31.0.0/16": "172.31.0.2"} {
		if got := Address(netip.MustParsePrefix(cidr)); got.String() != want {
			t.Errorf("Address(%s) = %s, want %s", cidr, got, want)
		}
	}
}

func TestEndpointAddress(t *testing.T) {
	for cidr, want := range map[string]string{"10.0.0.0/16": "10.0.0.3", "192.168.64.0/18": "192.168.64.3"} {
		if got := EndpointAddress(netip.MustParsePrefix(cidr)); got.String() != want {
			t.Errorf("EndpointAddress(%s) = %s, want %s", cidr, got, want)
		}
	}
}

func TestRDSEndpoint(t *testing.T) {
	a, b := RDSEndpoint("Podsg-Demo", "us-west-2"), RDSEndpoint("podsg-demo", "us-west-2")
	if a != b {
		t.Errorf("the identifier's case changes the hostname: %s, %s", a, b)
	}
	labels := strings.Split(a, ".")
	if len(labels) != 6 || labels[0] != "podsg-demo" || len(labels[1]) != 12 || strings.Join(labels[2:], ".") != "us-west-2.rds.amazonaws.com" {
		t.Errorf("RDSEndpoint = %s, want podsg-demo.<12 characters>.us-west-2.rds.amazonaws.com", a)
	}
	if other := RDSEndpoint("podsg-demo", "eu-west-1"); strings.Split(other, ".")[1] == labels[1] {
		t.Errorf("two regions share the label %s", labels[1])
	}
}

// vpc is a VPC with an instance ENI, a branch and an RDS instance's ENI.
func vpc() *topo.VPC {
	eni := func(tags state.Tags) *state.ENI { return &state.ENI{Tags: tags} }
	return &topo.VPC{CIDR: netip.MustParsePrefix("10.0.0.0/16"), Ports: []*topo.Port{
		{Kind: topo.KindInstance, ENI: eni(nil), IPs: []netip.Addr{netip.MustParseAddr("10.0.1.10"), netip.MustParseAddr("10.0.1.11")}},
		{Kind: topo.KindBranch, ENI: eni(nil), IPs: []netip.Addr{netip.MustParseAddr("10.0.2.20")}},
		{Kind: topo.KindRDS, ENI: eni(state.Tags{topo.AttachTag: "rds:My-DB"}), IPs: []netip.Addr{netip.MustParseAddr("10.0.3.30")}},
	}}
}

// serve runs a Handler with recs on loopback and returns a Go resolver (a client nobody here
// wrote) that asks it over network ("udp" or "tcp").
func serve(t *testing.T, recs *Records) (*Handler, func(network string) *net.Resolver) {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &Handler{}
	h.Set(recs)
	s := Serve(h, pc, ln)
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return h, func(network string) *net.Resolver {
		addr := pc.LocalAddr().String()
		if network == "tcp" {
			addr = ln.Addr().String()
		}
		return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}}
	}
}

func TestResolverAnswers(t *testing.T) {
	h, client := serve(t, RecordsOf(vpc(), "us-west-2"))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rds := RDSEndpoint("My-DB", "us-west-2")
	for _, network := range []string{"udp", "tcp"} {
		r := client(network)
		for name, want := range map[string]string{
			"ip-10-0-1-10.us-west-2.compute.internal": "10.0.1.10",
			"ip-10-0-1-11.us-west-2.compute.internal": "10.0.1.11", // a secondary address
			"IP-10-0-2-20.US-WEST-2.compute.internal": "10.0.2.20", // names are case-insensitive
			rds:                  "10.0.3.30",
			strings.ToUpper(rds): "10.0.3.30",
			"ip-10-0-3-30.us-west-2.compute.internal": "10.0.3.30",
			// The interface endpoint's private DNS names: base + 3.
			"sts.us-west-2.amazonaws.com": "10.0.0.3",
			"rds.us-west-2.amazonaws.com": "10.0.0.3",
			"ec2.us-west-2.amazonaws.com": "10.0.0.3",
		} {
			addrs, err := r.LookupHost(ctx, name)
			if err != nil || len(addrs) != 1 || addrs[0] != want {
				t.Errorf("%s: %s = %v, %v; want %s", network, name, addrs, err, want)
			}
		}
		for _, name := range []string{
			"ip-10-0-9-9.us-west-2.compute.internal", // no interface holds it
			"ip-10-0-1-10.eu-west-1.compute.internal",
			"other-db." + strings.SplitN(rds, ".", 2)[1],
			"example.com", "amazonaws.com",
			"sts.eu-west-1.amazonaws.com", "sts.amazonaws.com", // another region's, the global one
			"s3.us-west-2.amazonaws.com", // a service the local VPC does not serve
		} {
			var de *net.DNSError
			if addrs, err := r.LookupHost(ctx, name); !errors.As(err, &de) || !de.IsNotFound {
				t.Errorf("%s: %s = %v, %v; want NXDOMAIN", network, name, addrs, err)
			}
		}
		if names, err := r.LookupAddr(ctx, "10.0.1.10"); err != nil || len(names) != 1 || names[0] != "ip-10-0-1-10.us-west-2.compute.internal." {
			t.Errorf("%s: reverse of 10.0.1.10 = %v, %v", network, names, err)
		}
	}
	// The records follow the VPC: the branch is gone.
	v := vpc()
	v.Ports = v.Ports[:1]
	h.Set(RecordsOf(v, "us-west-2"))
	var de *net.DNSError
	if addrs, err := client("udp").LookupHost(ctx, "ip-10-0-2-20.us-west-2.compute.internal"); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("a deleted interface's name = %v, %v; want NXDOMAIN", addrs, err)
	}
}

func TestResolverProtocol(t *testing.T) {
	h := &Handler{}
	h.Set(RecordsOf(vpc(), "us-west-2"))
	ask := func(m *dns.Msg) *dns.Msg {
		w := &recorder{}
		h.ServeDNS(w, m)
		if w.msg == nil {
			t.Fatalf("no answer to %v", m)
		}
		return w.msg
	}
	q := new(dns.Msg).SetQuestion("ip-10-0-1-10.us-west-2.compute.internal.", dns.TypeAAAA)
	if r := ask(q); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || !r.RecursionAvailable {
		t.Errorf("AAAA of a known name: %v; want NOERROR, no answer (IPv4 only)", r)
	}
	q = new(dns.Msg).SetQuestion("ip-10-0-1-10.us-west-2.compute.internal.", dns.TypeA)
	if r := ask(q); len(r.Answer) != 1 || r.Answer[0].Header().Ttl != ttl || r.Id != q.Id {
		t.Errorf("A: %v", r)
	}
	n := new(dns.Msg).SetNotify("example.com.")
	if r := ask(n); r.Rcode != dns.RcodeNotImplemented {
		t.Errorf("NOTIFY: rcode %s, want NOTIMP", dns.RcodeToString[r.Rcode])
	}
	two := new(dns.Msg).SetQuestion("a.example.", dns.TypeA)
	two.Question = append(two.Question, dns.Question{Name: "b.example.", Qtype: dns.TypeA, Qclass: dns.ClassINET})
	if r := ask(two); r.Rcode != dns.RcodeFormatError {
		t.Errorf("two questions: rcode %s, want FORMERR", dns.RcodeToString[r.Rcode])
	}
}

// recorder is a dns.ResponseWriter that keeps the reply.
type recorder struct {
	dns.ResponseWriter
	msg *dns.Msg
}

func (r *recorder) WriteMsg(m *dns.Msg) error { r.msg = m; return nil }
