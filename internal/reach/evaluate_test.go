package reach

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/cloud"
)

func endpoint(eni, ip, instance, typ string, groups ...string) Endpoint {
	return Endpoint{Spec: eni, IP: netip.MustParseAddr(ip), ENI: cloud.NetworkInterface{
		ID: eni, PrivateIP: ip, InstanceID: instance, Type: typ, VPCID: "vpc-1", SecurityGroups: groups,
	}}
}

func in(id, proto string, from, to int32, peer string) cloud.SecurityGroupRule {
	r := cloud.SecurityGroupRule{ID: id, Protocol: proto, FromPort: from, ToPort: to}
	switch {
	case strings.HasPrefix(peer, "sg-"):
		r.ReferencedGroupID = peer
	case strings.HasPrefix(peer, "pl-"):
		r.PrefixListID = peer
	case strings.Contains(peer, ":"):
		r.CIDRv6 = peer
	default:
		r.CIDR = peer
	}
	return r
}

func out(id, proto string, from, to int32, peer string) cloud.SecurityGroupRule {
	r := in(id, proto, from, to, peer)
	r.Egress = true
	return r
}

var (
	tcp  = func(port int) Flow { return Flow{Protocol: cloud.ProtocolTCP, Port: port} }
	udp  = func(port int) Flow { return Flow{Protocol: cloud.ProtocolUDP, Port: port} }
	icmp = func(typ, code int) Flow { return Flow{Protocol: cloud.ProtocolICMP, ICMPType: typ, ICMPCode: code} }
)

// allEgress is EC2's default egress rule of a new group.
var allEgress = out("sgr-egress-all", "-1", -1, -1, "0.0.0.0/0")

// TestEvaluate covers each kind of rule on each side. Source A (10.0.1.10, group sg-a) and
// destination S (10.0.2.20, group sg-s) are on different instances unless a case says so; the
// source's egress allows everything unless the case gives sg-a other rules.
func TestEvaluate(t *testing.T) {
	src := endpoint("eni-a", "10.0.1.10", "i-a", cloud.InterfaceTypeInterface, "sg-a")
	dst := endpoint("eni-s", "10.0.2.20", "i-s", cloud.InterfaceTypeInterface, "sg-s")
	tests := map[string]struct {
		src, dst Endpoint // zero: the defaults above
		a        []cloud.SecurityGroupRule
		s        []cloud.SecurityGroupRule
		extra    map[string][]cloud.SecurityGroupRule
		flow     Flow
		want     bool
		// Rule ids expected to allow on each side, and to be unknown (prefix lists).
		egress, ingress, unknown []string
		local                    bool
	}{
		"no ingress rule: default deny": {flow: tcp(5432), want: false, egress: []string{"sgr-egress-all"}},
		"cidr contains the source": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "10.0.1.0/24")}, flow: tcp(5432),
			want: true, egress: []string{"sgr-egress-all"}, ingress: []string{"r1"},
		},
		"cidr /32 of the source": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "10.0.1.10/32")}, flow: tcp(5432), want: true, ingress: []string{"r1"},
		},
		"cidr excludes the source": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "10.0.2.0/24")}, flow: tcp(5432), want: false,
		},
		"unmasked cidr is masked": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "10.0.1.99/24")}, flow: tcp(5432), want: true, ingress: []string{"r1"},
		},
		"cidr 0.0.0.0/0": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "0.0.0.0/0")}, flow: tcp(5432), want: true, ingress: []string{"r1"},
		},
		"malformed cidr allows nothing": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "10.0.1/24")}, flow: tcp(5432), want: false,
		},
		"ipv6 cidr never matches ipv4": {
			s: []cloud.SecurityGroupRule{in("r1", "-1", -1, -1, "::/0")}, flow: tcp(5432), want: false,
		},
		"group reference: the source carries it": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "sg-a")}, flow: tcp(5432), want: true, ingress: []string{"r1"},
		},
		"group reference: the source does not carry it": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "sg-other")}, flow: tcp(5432), want: false,
		},
		"group reference to itself: a peer in the same group": {
			src: endpoint("eni-a", "10.0.1.10", "i-a", cloud.InterfaceTypeInterface, "sg-s"),
			s:   []cloud.SecurityGroupRule{allEgress, in("r1", "-1", -1, -1, "sg-s")}, flow: udp(53), want: true,
			egress: []string{"sgr-egress-all"}, ingress: []string{"r1"},
		},
		"port range: low end":  {s: []cloud.SecurityGroupRule{in("r1", "tcp", 8000, 8010, "sg-a")}, flow: tcp(8000), want: true, ingress: []string{"r1"}},
		"port range: high end": {s: []cloud.SecurityGroupRule{in("r1", "tcp", 8000, 8010, "sg-a")}, flow: tcp(8010), want: true, ingress: []string{"r1"}},
		"port range: below":    {s: []cloud.SecurityGroupRule{in("r1", "tcp", 8000, 8010, "sg-a")}, flow: tcp(7999), want: false},
		"port range: above":    {s: []cloud.SecurityGroupRule{in("r1", "tcp", 8000, 8010, "sg-a")}, flow: tcp(8011), want: false},
		"tcp rule, udp flow":   {s: []cloud.SecurityGroupRule{in("r1", "tcp", 0, 65535, "sg-a")}, flow: udp(53), want: false},
		"udp rule, udp flow":   {s: []cloud.SecurityGroupRule{in("r1", "udp", 53, 53, "sg-a")}, flow: udp(53), want: true, ingress: []string{"r1"}},
		"tcp all ports":        {s: []cloud.SecurityGroupRule{in("r1", "tcp", 0, 65535, "sg-a")}, flow: tcp(0), want: true, ingress: []string{"r1"}},
		"protocol number 6 is tcp, with ports": {
			s: []cloud.SecurityGroupRule{in("r1", "6", 22, 22, "sg-a")}, flow: tcp(22), want: true, ingress: []string{"r1"},
		},
		"protocol number 6 outside its ports": {s: []cloud.SecurityGroupRule{in("r1", "6", 22, 22, "sg-a")}, flow: tcp(23), want: false},
		"protocol number 50 is not tcp":       {s: []cloud.SecurityGroupRule{in("r1", "50", -1, -1, "sg-a")}, flow: tcp(22), want: false},
		"protocol 0 matches nothing":          {s: []cloud.SecurityGroupRule{in("r1", "0", -1, -1, "sg-a")}, flow: tcp(22), want: false},
		"all protocols: udp":                  {s: []cloud.SecurityGroupRule{in("r1", "-1", -1, -1, "sg-a")}, flow: udp(9), want: true, ingress: []string{"r1"}},
		"all protocols: icmp":                 {s: []cloud.SecurityGroupRule{in("r1", "-1", -1, -1, "sg-a")}, flow: icmp(8, 0), want: true, ingress: []string{"r1"}},
		"icmp all types":                      {s: []cloud.SecurityGroupRule{in("r1", "icmp", -1, -1, "sg-a")}, flow: icmp(13, 0), want: true, ingress: []string{"r1"}},
		"icmp echo request, any code":         {s: []cloud.SecurityGroupRule{in("r1", "icmp", 8, -1, "sg-a")}, flow: icmp(8, 0), want: true, ingress: []string{"r1"}},
		"icmp other type":                     {s: []cloud.SecurityGroupRule{in("r1", "icmp", 8, -1, "sg-a")}, flow: icmp(0, 0), want: false},
		"icmp type and code":                  {s: []cloud.SecurityGroupRule{in("r1", "icmp", 3, 4, "sg-a")}, flow: icmp(3, 4), want: true, ingress: []string{"r1"}},
		"icmp other code":                     {s: []cloud.SecurityGroupRule{in("r1", "icmp", 3, 4, "sg-a")}, flow: icmp(3, 3), want: false},
		"icmp rule, tcp flow":                 {s: []cloud.SecurityGroupRule{in("r1", "icmp", -1, -1, "sg-a")}, flow: tcp(8), want: false},
		"egress restricted: no egress rule": {
			a: []cloud.SecurityGroupRule{}, s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "sg-a")}, flow: tcp(5432),
			want: false, ingress: []string{"r1"},
		},
		"egress to a group the destination carries": {
			a: []cloud.SecurityGroupRule{out("e1", "tcp", 5432, 5432, "sg-s")}, s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "sg-a")},
			flow: tcp(5432), want: true, egress: []string{"e1"}, ingress: []string{"r1"},
		},
		"egress to a cidr without the destination": {
			a: []cloud.SecurityGroupRule{out("e1", "tcp", 5432, 5432, "10.0.1.0/24")}, s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "sg-a")},
			flow: tcp(5432), want: false, ingress: []string{"r1"},
		},
		"egress port range": {
			a: []cloud.SecurityGroupRule{out("e1", "udp", 9000, 9100, "0.0.0.0/0")}, s: []cloud.SecurityGroupRule{in("r1", "-1", -1, -1, "0.0.0.0/0")},
			flow: udp(9101), want: false, ingress: []string{"r1"},
		},
		"an ingress rule does not allow egress": {
			a: []cloud.SecurityGroupRule{in("e1", "-1", -1, -1, "0.0.0.0/0")}, s: []cloud.SecurityGroupRule{in("r1", "-1", -1, -1, "0.0.0.0/0")},
			flow: tcp(1), want: false, ingress: []string{"r1"},
		},
		"union of the destination's groups": {
			dst:   endpoint("eni-s", "10.0.2.20", "i-s", cloud.InterfaceTypeBranch, "sg-s", "sg-s2"),
			s:     []cloud.SecurityGroupRule{in("r1", "tcp", 22, 22, "sg-a")},
			extra: map[string][]cloud.SecurityGroupRule{"sg-s2": {in("r2", "tcp", 5432, 5432, "sg-a")}},
			flow:  tcp(5432), want: true, ingress: []string{"r2"},
		},
		"every allowing rule is named": {
			s:    []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "sg-a"), in("r2", "-1", -1, -1, "10.0.0.0/16"), in("r3", "tcp", 22, 22, "sg-a")},
			flow: tcp(5432), want: true, ingress: []string{"r1", "r2"},
		},
		"prefix list: not decided": {
			s: []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "pl-1"), in("r2", "tcp", 22, 22, "pl-2")}, flow: tcp(5432),
			want: false, unknown: []string{"r1"},
		},
		"a group without rules on the ENI": {
			dst: endpoint("eni-s", "10.0.2.20", "i-s", cloud.InterfaceTypeInterface, "sg-gone"), flow: tcp(1), want: false,
		},
		"same ENI: local": {
			dst: endpoint("eni-a", "10.0.1.11", "i-a", cloud.InterfaceTypeInterface, "sg-a"), flow: tcp(5432), want: true, local: true,
		},
		"same instance, two ENIs: local": {
			dst: endpoint("eni-a2", "10.0.1.11", "i-a", cloud.InterfaceTypeInterface, "sg-s"), flow: tcp(5432), want: true, local: true,
		},
		"branch on the same instance: through the VPC": {
			dst: endpoint("eni-b", "10.0.1.12", "i-a", cloud.InterfaceTypeBranch, "sg-s"), flow: tcp(5432), want: false,
		},
		"unattached ENIs: through the VPC": {
			src:  endpoint("eni-x", "10.0.1.12", "", cloud.InterfaceTypeBranch, "sg-a"),
			dst:  endpoint("eni-y", "10.0.1.13", "", cloud.InterfaceTypeBranch, "sg-s"),
			s:    []cloud.SecurityGroupRule{in("r1", "tcp", 5432, 5432, "sg-a")},
			flow: tcp(5432), want: true, ingress: []string{"r1"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := []cloud.SecurityGroupRule{allEgress}
			if tc.a != nil {
				a = tc.a
			}
			input := Input{Src: src, Dst: dst, Groups: map[string]Group{
				"sg-a": {ID: "sg-a", Name: "a", Rules: a},
				"sg-s": {ID: "sg-s", Name: "s", Rules: tc.s},
			}}
			for id, rules := range tc.extra {
				input.Groups[id] = Group{ID: id, Rules: rules}
			}
			if tc.src.ENI.ID != "" {
				input.Src = tc.src
			}
			if tc.dst.ENI.ID != "" {
				input.Dst = tc.dst
			}
			v := Evaluate(input, tc.flow)
			if v.Allowed != tc.want {
				t.Errorf("Allowed = %v, want %v (%+v)", v.Allowed, tc.want, v)
			}
			if (v.Local != "") != tc.local {
				t.Errorf("Local = %q, want local %v", v.Local, tc.local)
			}
			if tc.local {
				return // the sides are informational
			}
			if tc.egress == nil && tc.a == nil {
				tc.egress = []string{"sgr-egress-all"}
			}
			expectIDs(t, "egress allowing", v.Egress.Allowing, tc.egress)
			expectIDs(t, "ingress allowing", v.Ingress.Allowing, tc.ingress)
			expectIDs(t, "unknown", append(v.Egress.Unknown, v.Ingress.Unknown...), tc.unknown)
			if v.Allowed != (v.Egress.Allowed() && v.Ingress.Allowed()) {
				t.Errorf("verdict %v disagrees with its sides (egress %v, ingress %v)", v.Allowed, v.Egress.Allowed(), v.Ingress.Allowed())
			}
		})
	}
}

func expectIDs(t *testing.T, what string, ms []Match, want []string) {
	t.Helper()
	var got []string
	for _, m := range ms {
		got = append(got, m.Rule.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s rules = %v, want %v", what, got, want)
	}
}

func TestEvaluateNamesGroupsInENIOrder(t *testing.T) {
	src := endpoint("eni-a", "10.0.1.10", "i-a", "", "sg-2", "sg-1")
	dst := endpoint("eni-s", "10.0.2.20", "i-s", "", "sg-1")
	v := Evaluate(Input{Src: src, Dst: dst, Groups: map[string]Group{"sg-1": {ID: "sg-1", Name: "one"}}}, tcp(1))
	if len(v.Egress.Groups) != 2 || v.Egress.Groups[0].ID != "sg-2" || v.Egress.Groups[1].Name != "one" {
		t.Fatalf("egress groups = %+v, want sg-2 then sg-1 (one)", v.Egress.Groups)
	}
}

func TestFlowValidate(t *testing.T) {
	tests := map[string]struct {
		flow    Flow
		wantErr string
	}{
		"tcp":                {flow: tcp(5432)},
		"udp port 0":         {flow: udp(0)},
		"tcp port 65536":     {flow: tcp(65536), wantErr: "outside 0..65535"},
		"negative port":      {flow: udp(-1), wantErr: "outside 0..65535"},
		"icmp echo":          {flow: icmp(8, 0)},
		"icmp type 256":      {flow: icmp(256, 0), wantErr: "0..255"},
		"icmp code -1":       {flow: icmp(3, -1), wantErr: "0..255"},
		"unknown":            {flow: Flow{Protocol: "sctp"}, wantErr: "want tcp, udp or icmp"},
		"all is no flow":     {flow: Flow{Protocol: "-1"}, wantErr: "want tcp, udp or icmp"},
		"empty protocol":     {flow: Flow{}, wantErr: "want tcp, udp or icmp"},
		"icmp ignores ports": {flow: Flow{Protocol: "icmp", Port: 99999}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.flow.Validate()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Validate() = %v, want %q", err, tc.wantErr)
			}
		})
	}
}
