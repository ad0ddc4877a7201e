package kernel

import (
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// TestHostAccess: the root namespace reaches the VPC only through its host
// ENI, under that ENI's groups; without one the CIDR is unreachable, never
// routed out of the machine.
func TestHostAccess(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.73.0.0/16")
	sub := e.subnet(vpc, "10.73.1.0/24")
	sgHost, sgS := e.group(vpc, "host"), e.group(vpc, "server")
	e.ingress(sgS, "tcp", 8000, 8000, sgHost)
	s, ipS := e.instance(sub, sgS)
	vpctest.ServeTCP(t, e.dp.names.Instance(s), net.JoinHostPort(ipS, "8000"))
	out, _ := exec.Command("ip", "route", "get", ipS).CombinedOutput()
	if !strings.Contains(string(out), "No route to host") && !strings.Contains(string(out), "unreachable") {
		t.Fatalf("without a host ENI, ip route get %s = %q, want unreachable", ipS, out)
	}
	e.eni(sub, "", map[string]string{topo.AttachTag: "host"}, sgHost)
	out, _ = exec.Command("ip", "route", "get", ipS).CombinedOutput()
	if !strings.Contains(string(out), "dev "+e.dp.names.RootLinkPrefix()) {
		t.Fatalf("with a host ENI, ip route get %s = %q, want the host link", ipS, out)
	}
	// The root namespace now has an explicit route into the fabric.
	if err := tcpProbe("", net.JoinHostPort(ipS, "8000")); err != nil {
		t.Errorf("host -> server: %v", err)
	}
}

// TestIMDS: the SDK's metadata client, run inside an instance namespace,
// gets the instance's identity with the IMDSv2 token flow.
func TestIMDS(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.74.0.0/16")
	sub := e.subnet(vpc, "10.74.1.0/24")
	sg := e.group(vpc, "a")
	id, ip := e.instance(sub, sg)
	ns := e.dp.names.Instance(id)
	// Dial from inside the namespace: the transport dials on its own
	// goroutines, which would otherwise run in the root namespace.
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = namespace.Do(ns, func() error { c, err = (&net.Dialer{}).DialContext(ctx, network, addr); return err })
		return c, err
	}
	client := imds.New(imds.Options{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dial}}})
	get := func(path string) string {
		t.Helper()
		out, err := client.GetMetadata(context.Background(), &imds.GetMetadataInput{Path: path})
		if err != nil {
			t.Fatalf("GetMetadata(%s): %v", path, err)
		}
		defer out.Content.Close()
		b, _ := io.ReadAll(out.Content)
		return string(b)
	}
	if got := get("instance-id"); got != id {
		t.Errorf("instance-id = %q, want %q", got, id)
	}
	if got := get("local-ipv4"); got != ip {
		t.Errorf("local-ipv4 = %q, want %q", got, ip)
	}
	mac := get("mac")
	for path, want := range map[string]string{
		"placement/region": region,
		"instance-type":    "m5.large",
		"network/interfaces/macs/" + mac + "/device-number":          "0",
		"network/interfaces/macs/" + mac + "/subnet-id":              sub,
		"network/interfaces/macs/" + mac + "/subnet-ipv4-cidr-block": "10.74.1.0/24",
		"network/interfaces/macs/" + mac + "/vpc-id":                 vpc,
		"network/interfaces/macs/" + mac + "/vpc-ipv4-cidr-blocks":   "10.74.0.0/16",
		"network/interfaces/macs/" + mac + "/security-group-ids":     sg,
		"network/interfaces/macs/" + mac + "/local-ipv4s":            ip,
	} {
		if got := get(path); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	doc, err := client.GetInstanceIdentityDocument(context.Background(), &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		t.Fatalf("GetInstanceIdentityDocument: %v", err)
	}
	if doc.InstanceID != id || doc.Region != region {
		t.Errorf("identity document = %+v", doc.InstanceIdentityDocument)
	}
}

// TestInstanceSourceAddress: an instance that routes an address through a link of its own
// without addresses (a pod's host-side veth) sends from its primary ENI's address, as on
// EC2, never from the metadata address on its lo: NetworkPolicy admits a pod's node by the
// node's address, and the kubelet's probes take that route.
func TestInstanceSourceAddress(t *testing.T) {
	e := newEnv(t, state.Limits{})
	vpc := e.vpc("10.75.0.0/16")
	sub := e.subnet(vpc, "10.75.1.0/24")
	id, ip := e.instance(sub, e.group(vpc, "a"))
	ns := e.dp.names.Instance(id)
	for _, args := range [][]string{
		{"link", "add", "podhost0", "type", "veth", "peer", "name", "podside0"},
		{"link", "set", "podhost0", "up"},
		{"link", "set", "podside0", "up"},
		{"route", "add", "10.75.1.200/32", "dev", "podhost0"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	out, err := exec.Command("ip", "-n", ns, "-o", "route", "get", "10.75.1.200").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route get: %v: %s", err, out)
	}
	if !strings.Contains(string(out), " src "+ip+" ") {
		t.Errorf("route to a pod's address: %s; want source %s (the instance's primary address)", out, ip)
	}
}
