package kernel

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/resolver"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestVPCResolver asks the VPC's resolver (base + 2) with dig, a client nobody here wrote, from
// inside an instance whose security group lets nothing out: as AmazonProvidedDNS, it is not
// subject to security groups. It answers the private DNS names of the VPC's interfaces in every
// subnet (and their reverse names) and an RDS instance's endpoint hostname, over UDP and TCP;
// NXDOMAIN for addresses no interface holds and for the internet; and the instance finds it
// through the resolv.conf its namespace gets, as an EC2 instance through its DHCP options.
func TestVPCResolver(t *testing.T) {
	e := newEnv(t, state.Limits{})
	testenv.Require(t, testenv.Dig)
	vpc := e.vpc("10.76.0.0/16")
	sub1, sub2 := e.subnet(vpc, "10.76.1.0/24"), e.subnet(vpc, "10.76.2.0/24")
	closed, open := e.group(vpc, "closed"), e.group(vpc, "open")
	if _, err := e.ec2.RevokeSecurityGroupEgress(context.Background(), &ec2.RevokeSecurityGroupEgressInput{
		GroupId: aws.String(closed), IpPermissions: []types.IpPermission{vpctest.Permission("-1", -1, -1, "0.0.0.0/0")},
	}); err != nil {
		t.Fatalf("RevokeSecurityGroupEgress: %v", err)
	}
	a, ipA := e.instance(sub1, closed)
	_, ipB := e.instance(sub2, open)
	db := e.eni(sub2, "", map[string]string{topo.AttachTag: "rds:Orders-DB"}, open)
	dbHost := resolver.RDSEndpoint("Orders-DB", region)
	nsA := e.dp.names.Instance(a)

	dig := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "ip", append([]string{"netns", "exec", nsA, "dig", "+time=2", "+tries=2"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dig %v in %s: %v\n%s", args, nsA, err, out)
		}
		return string(out)
	}
	name := func(ip string) string { return state.PrivateDNSName(region, ip) }
	for _, transport := range []string{"+notcp", "+tcp"} {
		for host, want := range map[string]string{name(ipA): ipA, name(ipB): ipB, dbHost: *db.PrivateIpAddress, name(*db.PrivateIpAddress): *db.PrivateIpAddress} {
			// No @server: dig reads the resolv.conf that `ip netns exec` put in place.
			if got := strings.TrimSpace(dig(transport, "+short", host)); got != want {
				t.Errorf("dig %s %s = %q, want %s", transport, host, got, want)
			}
		}
		for _, host := range []string{name("10.76.2.250"), "example.com", "rds.amazonaws.com"} {
			if out := dig(transport, "@10.76.0.2", host); !strings.Contains(out, "status: NXDOMAIN") {
				t.Errorf("dig %s %s: want NXDOMAIN\n%s", transport, host, out)
			}
		}
	}
	if got := strings.TrimSpace(dig("+short", "-x", ipB)); got != name(ipB)+"." {
		t.Errorf("dig -x %s = %q, want %s.", ipB, got, name(ipB))
	}
	conf, err := os.ReadFile(namespace.ConfigDir(nsA) + "/resolv.conf")
	if err != nil || !strings.Contains(string(conf), "nameserver 10.76.0.2\n") || !strings.Contains(string(conf), "search us-west-2.compute.internal\n") {
		t.Errorf("resolv.conf of %s: %q, %v", nsA, conf, err)
	}

	// The database's ENI goes: so does its name.
	if _, err := e.ec2.DeleteNetworkInterface(context.Background(), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: db.NetworkInterfaceId}); err != nil {
		t.Fatalf("DeleteNetworkInterface: %v", err)
	}
	if out := dig(dbHost); !strings.Contains(out, "status: NXDOMAIN") {
		t.Errorf("the deleted database's endpoint: want NXDOMAIN\n%s", out)
	}
	// A terminated instance's namespace takes its resolv.conf with it.
	if _, err := e.ec2.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: []string{a}}); err != nil {
		t.Fatalf("TerminateInstances: %v", err)
	}
	if _, err := os.Stat(namespace.ConfigDir(nsA)); !os.IsNotExist(err) {
		t.Errorf("%s after termination: %v, want it gone", namespace.ConfigDir(nsA), err)
	}
}
