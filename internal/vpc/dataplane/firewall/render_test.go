package firewall

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fixture() *topo.VPC {
	in := topo.Input{
		VPCs:    []*state.VPC{{ID: "vpc-1", CIDR: "10.0.0.0/16"}},
		Subnets: []*state.Subnet{{ID: "subnet-1", VPCID: "vpc-1", CIDR: "10.0.1.0/24"}},
		Groups: []*state.SecurityGroup{
			{ID: "sg-a", VPCID: "vpc-1", Rules: []state.Rule{{ID: "sgr-e1", Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"}}},
			{ID: "sg-s", VPCID: "vpc-1", Rules: []state.Rule{
				{ID: "sgr-1", Protocol: "tcp", FromPort: 8000, ToPort: 8010, GroupID: "sg-a"},
				{ID: "sgr-2", Protocol: "udp", FromPort: 53, ToPort: 53, CIDR: "10.0.0.0/16"},
				{ID: "sgr-3", Protocol: "icmp", FromPort: 8, ToPort: -1, CIDR: "10.0.1.0/24"},
				{ID: "sgr-4", Protocol: "50", FromPort: -1, ToPort: -1, CIDR: "10.0.1.7/32"},
				{ID: "sgr-5", Protocol: "tcp", FromPort: 0, ToPort: 65535, CIDR: "0.0.0.0/0"},
			}},
		},
		Instances: []*state.Instance{{ID: "i-1", VPCID: "vpc-1", State: state.InstanceRunning}, {ID: "i-2", VPCID: "vpc-1", State: state.InstanceRunning}},
		ENIs: []*state.ENI{
			{ID: "eni-a", VPCID: "vpc-1", SubnetID: "subnet-1", MAC: "02:00:00:00:00:0a", PrivateIPs: []string{"10.0.1.10"}, Groups: []string{"sg-a"},
				SourceDestCheck: true, Attachment: &state.Attachment{InstanceID: "i-1"}},
			{ID: "eni-s", VPCID: "vpc-1", SubnetID: "subnet-1", MAC: "02:00:00:00:00:0b", PrivateIPs: []string{"10.0.1.20", "10.0.1.21"}, Groups: []string{"sg-s"},
				SourceDestCheck: true, Attachment: &state.Attachment{InstanceID: "i-2"}},
		},
	}
	return topo.BuildFrom(topo.Names{ID: "x"}, in).VPCs[0]
}

func TestRenderGolden(t *testing.T) {
	got := Render(fixture()).String()
	path := filepath.Join("testdata", "render.nft")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden (run with -update): %v", err)
	}
	if got != string(want) {
		t.Errorf("ruleset differs from %s (run with -update):\n%s", path, got)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		rule   state.Rule
		egress bool
		want   string
		ok     bool
	}{
		{state.Rule{Protocol: "-1", CIDR: "0.0.0.0/0"}, false, "accept", true},
		{state.Rule{Protocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "192.168.0.0/16"}, false, "ip saddr 192.168.0.0/16 ip protocol 6 th dport 22 accept", true},
		{state.Rule{Protocol: "6", FromPort: 1, ToPort: 1024, GroupID: "sg-x"}, true, "ip daddr @sg-x ip protocol 6 th dport 1-1024 accept", true},
		{state.Rule{Protocol: "icmp", FromPort: 3, ToPort: 4, CIDR: "0.0.0.0/0"}, false, "ip protocol icmp icmp type 3 icmp code 4 accept", true},
		{state.Rule{Protocol: "icmp", FromPort: -1, ToPort: 4, CIDR: "0.0.0.0/0"}, false, "ip protocol 1 accept", true},
		{state.Rule{Protocol: "udp", FromPort: -1, ToPort: -1, CIDR: "10.0.0.0/8"}, false, "ip saddr 10.0.0.0/8 ip protocol 17 accept", true},
		{state.Rule{Protocol: "tcp", CIDR: "::/0"}, false, "", false},
		{state.Rule{Protocol: "bogus", CIDR: "0.0.0.0/0"}, false, "", false},
	} {
		r, ok := match(tc.rule, tc.egress)
		if ok != tc.ok {
			t.Errorf("match(%+v) ok = %v, want %v", tc.rule, ok, tc.ok)
			continue
		}
		if !ok {
			continue
		}
		r.Verdict = Accept
		if got := r.String(); got != tc.want {
			t.Errorf("match(%+v) = %q, want %q", tc.rule, got, tc.want)
		}
	}
}
