package ec2_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/vpc/server"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// newClient returns our client pointed at an in-process local VPC: the real SDK over HTTP.
func newClient(t *testing.T, env *vpctest.Env, reg prometheus.Registerer) *ec2.Client {
	t.Helper()
	c, err := ec2.New(t.Context(), ec2.Options{
		Region: vpctest.Region, Endpoint: env.URL, PageSize: 5, MaxAttempts: 1,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		MutatingQPS: 1000, MutatingBurst: 1000, DescribeQPS: 1000, DescribeBurst: 1000,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBranchLifecycle walks the calls podsg-controller makes for one trunk node and one pod.
func TestBranchLifecycle(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	ctx := t.Context()
	vpc := env.NewVPC(t, "10.0.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.0.0.0/19")
	sgA, sgB := env.NewGroup(t, *vpc.VpcId, "a"), env.NewGroup(t, *vpc.VpcId, "b")
	inst := env.NewInstance(t, *subnet.SubnetId, "m5.xlarge")
	reg := prometheus.NewRegistry()
	c := newClient(t, env, reg)

	got, err := c.DescribeInstance(ctx, *inst.InstanceId)
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != "m5.xlarge" || got.SubnetID != *subnet.SubnetId || len(got.NetworkInterfaces) != 1 ||
		got.NetworkInterfaces[0].DeviceIndex != 0 || got.PrivateIP == "" {
		t.Fatalf("DescribeInstance = %+v", got)
	}
	sn, err := c.DescribeSubnet(ctx, *subnet.SubnetId)
	if err != nil || sn.CIDR != "10.0.0.0/19" || sn.VPCID != *vpc.VpcId {
		t.Fatalf("DescribeSubnet = %+v, %v", sn, err)
	}
	if gs, err := c.DescribeSecurityGroups(ctx, []string{sgA, sgB}); err != nil || len(gs) != 2 {
		t.Fatalf("DescribeSecurityGroups = %+v, %v", gs, err)
	}
	_, err = c.DescribeSecurityGroups(ctx, []string{sgA, "sg-0123456789abcdef0"})
	expectKind(t, err, cloud.ErrNotFound, "InvalidGroup.NotFound")

	tags := map[string]string{cloud.TagCluster: "c1"}
	trunk, err := c.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{
		SubnetID: *subnet.SubnetId, Type: cloud.InterfaceTypeTrunk, Description: "aws-k8s-trunk-eni", Tags: tags, SecurityGroups: []string{sgA},
	})
	if err != nil || trunk.Type != cloud.InterfaceTypeTrunk || trunk.Tags[cloud.TagCluster] != "c1" {
		t.Fatalf("creating the trunk: %+v, %v", trunk, err)
	}
	if _, err := c.AttachNetworkInterface(ctx, trunk.ID, *inst.InstanceId, 1); err != nil {
		t.Fatal(err)
	}

	in := cloud.CreateNetworkInterfaceInput{SubnetID: *subnet.SubnetId, SecurityGroups: []string{sgA, sgB}, Tags: tags, ClientToken: "pod-uid-1"}
	branch, err := c.CreateNetworkInterface(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.CreateNetworkInterface(ctx, in)
	if err != nil || again.ID != branch.ID {
		t.Fatalf("retry with the same ClientToken made %q (%v), want %q", again.ID, err, branch.ID)
	}
	if strings.Join(branch.SecurityGroups, ",") != sgA+","+sgB || branch.MAC == "" || branch.PrivateIP == "" {
		t.Fatalf("branch = %+v", branch)
	}

	assoc, err := c.AssociateTrunkInterface(ctx, trunk.ID, branch.ID, 7, "assoc-1")
	if err != nil || assoc.VLAN != 7 || assoc.TrunkID != trunk.ID || assoc.BranchID != branch.ID || assoc.ID == "" {
		t.Fatalf("AssociateTrunkInterface = %+v, %v", assoc, err)
	}
	other, err := c.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: *subnet.SubnetId})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AssociateTrunkInterface(ctx, trunk.ID, other.ID, 7, "")
	if err == nil || cloud.Code(err) == "" {
		t.Fatalf("a second branch on VLAN 7: err = %v, want an EC2 error", err)
	}
	assocs, err := c.DescribeTrunkInterfaceAssociations(ctx, trunk.ID)
	if err != nil || len(assocs) != 1 || assocs[0] != assoc {
		t.Fatalf("DescribeTrunkInterfaceAssociations = %+v, %v", assocs, err)
	}
	expectKind(t, c.DeleteNetworkInterface(ctx, branch.ID), cloud.ErrConflict, "InvalidNetworkInterface.InUse")
	// Reused for another pod: its groups change in place, still associated.
	if err := c.ModifyNetworkInterfaceGroups(ctx, branch.ID, []string{sgB}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{branch.ID}}); err != nil ||
		len(got) != 1 || strings.Join(got[0].SecurityGroups, ",") != sgB {
		t.Fatalf("after modifying its groups to %s: %+v, %v", sgB, got, err)
	}
	expectKind(t, c.ModifyNetworkInterfaceGroups(ctx, branch.ID, []string{"sg-0123456789abcdef0"}), cloud.ErrNotFound, "InvalidGroup.NotFound")

	if err := c.DisassociateTrunkInterface(ctx, assoc.ID, "dis-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNetworkInterface(ctx, branch.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{IDs: []string{branch.ID}})
	expectKind(t, err, cloud.ErrNotFound, "InvalidNetworkInterfaceID.NotFound")

	if n := testutil.ToFloat64(mustCounter(t, reg, "CreateNetworkInterface", "ok")); n != 4 {
		t.Errorf("podsg_ec2_requests_total{CreateNetworkInterface,ok} = %v, want 4", n)
	}
}

// TestDescribeNetworkInterfacesPaginates reads more ENIs than one page holds, by tag.
func TestDescribeNetworkInterfacesPaginates(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{})
	ctx := t.Context()
	vpc := env.NewVPC(t, "10.1.0.0/16")
	subnet := env.NewSubnet(t, *vpc.VpcId, "10.1.0.0/24")
	c := newClient(t, env, nil)
	const n = 12 // PageSize is 5: three pages
	for i := range n {
		tags := map[string]string{cloud.TagCluster: "c1"}
		switch {
		case i%2 == 0: // 6 of them
			tags[cloud.TagNode] = "node-a"
		case i%4 == 1: // 3
			tags[cloud.TagNode] = "node-b"
		}
		if _, err := c.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: *subnet.SubnetId, Tags: tags}); err != nil {
			t.Fatal(err)
		}
	}
	env.NewENI(t, *subnet.SubnetId, "") // untagged: never returned
	tests := map[string]struct {
		filter cloud.NetworkInterfaceFilter
		want   int
	}{
		"tag value":             {cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagCluster: "c1"}}, n},
		"tag key":               {cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagNode: ""}}, 9},
		"tag and subnet":        {cloud.NetworkInterfaceFilter{SubnetID: *subnet.SubnetId, Tags: map[string]string{cloud.TagCluster: "c1", cloud.TagNode: "node-a"}}, n / 2},
		"other cluster":         {cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagCluster: "c2"}}, 0},
		"everything in subnet":  {cloud.NetworkInterfaceFilter{SubnetID: *subnet.SubnetId}, n + 1},
		"one of two tag values": {cloud.NetworkInterfaceFilter{TagsAnyOf: map[string][]string{cloud.TagNode: {"node-a", "node-b"}}}, 9},
		"one of a tag value and a missing one": {cloud.NetworkInterfaceFilter{
			TagsAnyOf: map[string][]string{cloud.TagNode: {"node-b", "node-z"}}}, 3},
		"one of tag values, and a tag": {cloud.NetworkInterfaceFilter{Tags: map[string]string{cloud.TagCluster: "c2"},
			TagsAnyOf: map[string][]string{cloud.TagNode: {"node-a", "node-b"}}}, 0},
		"one of no tag values": {cloud.NetworkInterfaceFilter{TagsAnyOf: map[string][]string{cloud.TagNode: {}}}, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			enis, err := c.DescribeNetworkInterfaces(ctx, tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, e := range enis {
				if seen[e.ID] {
					t.Fatalf("%s returned twice: pages overlap", e.ID)
				}
				seen[e.ID] = true
			}
			if len(enis) != tc.want {
				t.Fatalf("got %d ENIs, want %d", len(enis), tc.want)
			}
		})
	}
}

// TestThrottlingIsClassified checks that EC2's throttling reaches the caller as ErrThrottled
// once the SDK's retry budget is spent, so the caller can back off, and slows the client's
// own budget down; calls are counted by the purpose their context carries.
func TestThrottlingIsClassified(t *testing.T) {
	env := vpctest.Start(t, vpctest.Options{Profile: server.Profile{Throttle: server.Throttle{
		Mutating: &server.Bucket{Capacity: 1, RefillPerSecond: 0},
	}}})
	ctx := cloud.WithPurpose(t.Context(), cloud.PurposePod)
	vpc := env.NewVPC(t, "10.2.0.0/16") // spends the one token
	reg := prometheus.NewRegistry()
	c := newClient(t, env, reg)
	_, err := c.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: *vpc.VpcId})
	expectKind(t, err, cloud.ErrThrottled, "RequestLimitExceeded")
	if n := testutil.ToFloat64(mustCounter(t, reg, "CreateNetworkInterface", "RequestLimitExceeded")); n != 1 {
		t.Errorf("throttled calls counted %v, want 1", n)
	}
	if p := label(t, reg, "podsg_ec2_requests_total", "purpose"); p != string(cloud.PurposePod) {
		t.Errorf("the call was counted for purpose %q, want %q", p, cloud.PurposePod)
	}
	// Half of 1000, plus what it won back since (a twentieth of 1000 per second).
	if r := gauge(t, reg, "podsg_ec2_budget_refill_per_second", "mutating"); r < 500 || r > 550 {
		t.Errorf("the mutating budget refills %v/s after EC2 throttled, want about half of 1000", r)
	}
}

func expectKind(t *testing.T, err, kind error, code string) {
	t.Helper()
	if !errors.Is(err, kind) || cloud.Code(err) != code {
		t.Fatalf("err = %v (code %q), want kind %v with code %q", err, cloud.Code(err), kind, code)
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, action, result string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "podsg_ec2_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["action"] == action && labels["result"] == result {
				return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x"}, func() float64 { return m.GetCounter().GetValue() })
			}
		}
	}
	t.Fatalf("no podsg_ec2_requests_total{action=%q,result=%q}", action, result)
	return nil
}

// label returns the value of a label of the one series of a metric.
func label(t *testing.T, reg *prometheus.Registry, metric, name string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric || len(mf.GetMetric()) != 1 {
			continue
		}
		for _, l := range mf.GetMetric()[0].GetLabel() {
			if l.GetName() == name {
				return l.GetValue()
			}
		}
	}
	t.Fatalf("no single series of %s with label %s", metric, name)
	return ""
}

// gauge returns a gauge of a budget class.
func gauge(t *testing.T, reg *prometheus.Registry, metric, class string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "class" && l.GetValue() == class {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{class=%q}", metric, class)
	return 0
}
