package reach_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/reach"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

// fakePods serves pods from a map by namespace/name.
type fakePods map[string]*corev1.Pod

func (f fakePods) GetPod(_ context.Context, namespace, name string) (*corev1.Pod, error) {
	if p, ok := f[namespace+"/"+name]; ok {
		return p, nil
	}
	return nil, errors.New("pods \"" + name + "\" not found")
}

// tutorial is the seed tutorial's network in a local VPC: a node whose primary ENI carries the
// node group and a regular pod's IP, a branch ENI with the node and client groups, and a
// database ENI admitting 5432 from the client group only.
type tutorial struct {
	env                    *vpctest.Env
	c                      *cloudec2.Client
	vpc, subnet            string
	nodeSG, clientSG, dbSG string
	node, branch, db       cloud.NetworkInterface
	regularPodIP, dbIP     string
	pods                   fakePods
	dbRule, nodeEgress     string
}

func newTutorial(t *testing.T) *tutorial {
	t.Helper()
	ctx := t.Context()
	env := vpctest.Start(t, vpctest.Options{})
	c := env.CloudClient(t, func(o *cloudec2.Options) { o.PageSize = 5 }) // several pages for a few ENIs
	tu := &tutorial{env: env, c: c, pods: fakePods{}}
	net := vpctest.NewTutorial(t, env.Client, "10.5.0.0/16", "10.5.0.0/24")
	tu.vpc, tu.subnet, tu.dbRule = net.VPC, net.Subnet, net.DBRule
	tu.nodeSG, tu.clientSG, tu.dbSG = net.NodeSG, net.ClientSG, net.DBSG

	run, err := env.Client.RunInstances(ctx, &awsec2.RunInstancesInput{
		ImageId: aws.String("ami-12345678"), InstanceType: types.InstanceTypeM5Xlarge, SubnetId: aws.String(tu.subnet),
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), SecurityGroupIds: []string{tu.nodeSG},
	})
	if err != nil {
		t.Fatal(err)
	}
	primary := *run.Instances[0].NetworkInterfaces[0].NetworkInterfaceId
	ips, err := c.AssignPrivateIPs(ctx, primary, 2)
	if err != nil {
		t.Fatal(err)
	}
	tu.regularPodIP = ips[1]
	tu.node = tu.eni(t, primary)
	tu.branch = tu.create(t, cloud.CreateNetworkInterfaceInput{SubnetID: tu.subnet, SecurityGroups: []string{tu.nodeSG, tu.clientSG}})
	tu.db = tu.create(t, cloud.CreateNetworkInterfaceInput{SubnetID: tu.subnet, SecurityGroups: []string{tu.dbSG}})
	tu.dbIP = tu.db.PrivateIP
	tu.nodeEgress = tu.defaultEgress(t, tu.nodeSG)

	ann, err := v1beta1.MarshalPodENIs([]v1beta1.PodENI{{
		ENIID: tu.branch.ID, IfAddress: tu.branch.MAC, PrivateIP: tu.branch.PrivateIP, VLANID: 1, SubnetCIDR: "10.5.0.0/24",
	}})
	if err != nil {
		t.Fatal(err)
	}
	tu.pods["default/postgres-test"] = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "postgres-test", Annotations: map[string]string{v1beta1.AnnotationPodENI: ann}},
		Status:     corev1.PodStatus{PodIP: tu.branch.PrivateIP},
	}
	tu.pods["default/postgres-test-no-sa"] = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "postgres-test-no-sa"},
		Status:     corev1.PodStatus{PodIP: tu.regularPodIP},
	}
	tu.pods["default/pending"] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pending"}}
	podENI := corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("1")}
	tu.pods["default/unallocated"] = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unallocated"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Limits: podENI, Requests: podENI}}}},
		Status:     corev1.PodStatus{PodIP: "10.5.0.200"},
	}
	// Asks for a branch ENI from an init container: the scheduler charges it all the same.
	tu.pods["default/unallocated-init"] = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "unallocated-init"},
		Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "i", Resources: corev1.ResourceRequirements{Limits: podENI}}},
			Containers: []corev1.Container{{Name: "c"}}},
		Status: corev1.PodStatus{PodIP: "10.5.0.201"},
	}
	// A request of 0 asks for nothing: the pod runs on its node's ENI.
	zero := corev1.ResourceList{v1beta1.ResourcePodENI: resource.MustParse("0")}
	tu.pods["default/zero-request"] = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "zero-request"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Resources: corev1.ResourceRequirements{Limits: zero, Requests: zero}}}},
		Status:     corev1.PodStatus{PodIP: tu.regularPodIP},
	}
	tu.pods["default/bad-annotation"] = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bad-annotation", Annotations: map[string]string{v1beta1.AnnotationPodENI: "{"}},
	}
	return tu
}

func (tu *tutorial) create(t *testing.T, in cloud.CreateNetworkInterfaceInput) cloud.NetworkInterface {
	t.Helper()
	e, err := tu.c.CreateNetworkInterface(t.Context(), in)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (tu *tutorial) eni(t *testing.T, id string) cloud.NetworkInterface {
	t.Helper()
	es, err := tu.c.DescribeNetworkInterfaces(t.Context(), cloud.NetworkInterfaceFilter{IDs: []string{id}})
	if err != nil || len(es) != 1 {
		t.Fatalf("describing %s: %v, %v", id, es, err)
	}
	return es[0]
}

func (tu *tutorial) defaultEgress(t *testing.T, group string) string {
	t.Helper()
	rules, err := tu.c.DescribeSecurityGroupRules(t.Context(), []string{group})
	rules = slices.DeleteFunc(rules, func(r cloud.SecurityGroupRule) bool { return !r.Egress })
	if err != nil || len(rules) != 1 {
		t.Fatalf("egress rules of %s = %+v, %v; want its default one alone", group, rules, err)
	}
	return rules[0].ID
}

// TestLoadAndEvaluate resolves every kind of endpoint through the real client on the local
// VPC and checks the verdict and the rules named: the seed tutorial's two pods, by pod, ENI
// id and address.
func TestLoadAndEvaluate(t *testing.T) {
	tu := newTutorial(t)
	tcp5432 := reach.Flow{Protocol: cloud.ProtocolTCP, Port: 5432}
	tests := map[string]struct {
		src, dst         string
		flow             reach.Flow
		want             bool
		srcENI, dstENI   string
		srcIP            string
		egress, ingress  []string // ids of the allowing rules
		egressFromGroups []string // groups on the source ENI, in order
	}{
		"branch pod to the database": {
			src: "pod/default/postgres-test", dst: tu.dbIP, flow: tcp5432, want: true,
			srcENI: tu.branch.ID, dstENI: tu.db.ID, srcIP: tu.branch.PrivateIP,
			egress: []string{tu.nodeEgress, tu.defaultEgress(t, tu.clientSG)}, ingress: []string{tu.dbRule},
			egressFromGroups: []string{tu.nodeSG, tu.clientSG},
		},
		"regular pod to the database": {
			src: "pod/default/postgres-test-no-sa", dst: tu.db.ID, flow: tcp5432, want: false,
			srcENI: tu.node.ID, dstENI: tu.db.ID, srcIP: tu.regularPodIP,
			egress: []string{tu.nodeEgress}, egressFromGroups: []string{tu.nodeSG},
		},
		"branch ENI by id, other port": {
			src: tu.branch.ID, dst: tu.dbIP, flow: reach.Flow{Protocol: cloud.ProtocolTCP, Port: 5433}, want: false,
			srcENI: tu.branch.ID, dstENI: tu.db.ID, srcIP: tu.branch.PrivateIP, egress: []string{tu.nodeEgress, tu.defaultEgress(t, tu.clientSG)},
			egressFromGroups: []string{tu.nodeSG, tu.clientSG},
		},
		"database to the branch pod: no ingress on the branch": {
			src: tu.dbIP, dst: "pod/default/postgres-test", flow: tcp5432, want: false,
			srcENI: tu.db.ID, dstENI: tu.branch.ID, srcIP: tu.dbIP, egress: []string{tu.defaultEgress(t, tu.dbSG)},
			egressFromGroups: []string{tu.dbSG},
		},
		"a zero pod-eni request is a regular pod": {
			src: "pod/default/zero-request", dst: tu.node.PrivateIP, flow: tcp5432, want: true,
			srcENI: tu.node.ID, dstENI: tu.node.ID, srcIP: tu.regularPodIP, egress: []string{tu.nodeEgress},
			egressFromGroups: []string{tu.nodeSG},
		},
		"regular pod to its node: local": {
			src: "pod/default/postgres-test-no-sa", dst: tu.node.PrivateIP, flow: tcp5432, want: true,
			srcENI: tu.node.ID, dstENI: tu.node.ID, srcIP: tu.regularPodIP, egress: []string{tu.nodeEgress},
			egressFromGroups: []string{tu.nodeSG},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in, err := reach.Load(t.Context(), tu.c, tu.pods, tc.src, tc.dst)
			if err != nil {
				t.Fatal(err)
			}
			if in.Src.ENI.ID != tc.srcENI || in.Dst.ENI.ID != tc.dstENI || in.Src.IP.String() != tc.srcIP {
				t.Fatalf("resolved %s (%s) -> %s, want %s (%s) -> %s", in.Src.ENI.ID, in.Src.IP, in.Dst.ENI.ID, tc.srcENI, tc.srcIP, tc.dstENI)
			}
			v := reach.Evaluate(in, tc.flow)
			if v.Allowed != tc.want {
				t.Errorf("Allowed = %v, want %v", v.Allowed, tc.want)
			}
			if got := matchIDs(v.Egress.Allowing); !sameSet(got, tc.egress) {
				t.Errorf("egress allowed by %v, want %v", got, tc.egress)
			}
			if got := matchIDs(v.Ingress.Allowing); !sameSet(got, tc.ingress) {
				t.Errorf("ingress allowed by %v, want %v", got, tc.ingress)
			}
			var groups []string
			for _, g := range v.Egress.Groups {
				groups = append(groups, g.ID)
				if g.Name == "" {
					t.Errorf("group %s has no name", g.ID)
				}
			}
			if !slices.Equal(groups, tc.egressFromGroups) {
				t.Errorf("source groups %v, want %v", groups, tc.egressFromGroups)
			}
		})
	}
	// The referenced group is named although neither ENI of this flow carries it.
	in, err := reach.Load(t.Context(), tu.c, tu.pods, "pod/default/postgres-test-no-sa", tu.dbIP)
	if err != nil {
		t.Fatal(err)
	}
	if g := in.Groups[tu.clientSG]; g.Name != "RDSDbAccessSG" {
		t.Errorf("referenced group = %+v, want its name", g)
	}
}

func TestLoadErrors(t *testing.T) {
	tu := newTutorial(t)
	other := *tu.env.NewVPC(t, "10.5.0.0/16").VpcId // the same CIDR: addresses repeat
	otherSubnet := *tu.env.NewSubnet(t, other, "10.5.0.0/24").SubnetId
	twin := tu.create(t, cloud.CreateNetworkInterfaceInput{SubnetID: otherSubnet})
	if _, err := tu.env.Client.AssignPrivateIpAddresses(t.Context(), &awsec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(twin.ID), PrivateIpAddresses: []string{tu.dbIP},
	}); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		src, dst string
		pods     reach.Pods
		wantErr  string
	}{
		"unknown ENI":                       {src: "eni-0123456789abcdef0", dst: tu.dbIP, wantErr: "InvalidNetworkInterfaceID.NotFound"},
		"nobody's address":                  {src: tu.branch.ID, dst: "10.5.0.250", wantErr: "no network interface has the private address 10.5.0.250"},
		"not an endpoint":                   {src: "db", dst: tu.dbIP, wantErr: `"db" is neither an ENI id`},
		"ipv6":                              {src: "fd00::1", dst: tu.dbIP, wantErr: "is neither"},
		"pod spec without name":             {src: "pod/default", dst: tu.dbIP, wantErr: "want pod/NAMESPACE/NAME"},
		"pod without kubernetes":            {src: "pod/default/postgres-test", dst: tu.dbIP, pods: nil, wantErr: "needs a Kubernetes cluster"},
		"missing pod":                       {src: "pod/default/nope", dst: tu.dbIP, pods: tu.pods, wantErr: `reading pod/default/nope: pods "nope" not found`},
		"pod without IP":                    {src: "pod/default/pending", dst: tu.dbIP, pods: tu.pods, wantErr: "has no IP address yet"},
		"branch not allocated":              {src: "pod/default/unallocated", dst: tu.dbIP, pods: tu.pods, wantErr: "asks for a branch ENI but has no vpc.amazonaws.com/pod-eni annotation"},
		"branch asked by an init container": {src: "pod/default/unallocated-init", dst: tu.dbIP, pods: tu.pods, wantErr: "asks for a branch ENI but has no vpc.amazonaws.com/pod-eni annotation"},
		"unreadable annotation":             {src: "pod/default/bad-annotation", dst: tu.dbIP, pods: tu.pods, wantErr: "decoding the vpc.amazonaws.com/pod-eni annotation"},
		"two VPCs":                          {src: tu.branch.ID, dst: twin.ID, wantErr: "reach checks traffic inside one VPC"},
		"an address in two VPCs, from both": {
			src: tu.dbIP, dst: tu.dbIP, wantErr: "name a side by its ENI id",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := reach.Load(t.Context(), tu.c, tc.pods, tc.src, tc.dst)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load(%s, %s) = %v, want an error with %q", tc.src, tc.dst, err, tc.wantErr)
			}
		})
	}

	// An address two VPCs share is taken in the other endpoint's VPC.
	for _, tc := range []struct{ src, want string }{{tu.branch.ID, tu.db.ID}, {twin.ID, twin.ID}} {
		in, err := reach.Load(t.Context(), tu.c, nil, tc.src, tu.dbIP)
		if err != nil || in.Dst.ENI.ID != tc.want {
			t.Errorf("from %s, %s resolved to %s (%v), want %s", tc.src, tu.dbIP, in.Dst.ENI.ID, err, tc.want)
		}
	}
}

func matchIDs(ms []reach.Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Rule.ID)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// fakeDBs lists database instances.
type fakeDBs []reach.DBInstance

func (f fakeDBs) DBInstances(context.Context) ([]reach.DBInstance, error) { return f, nil }

// TestLoadDatabase: a database named by db/ID or by its endpoint hostname is its network
// interface (the one the local VPC tags with it), judged by that interface's groups.
func TestLoadDatabase(t *testing.T) {
	tu := newTutorial(t)
	orders := tu.create(t, cloud.CreateNetworkInterfaceInput{SubnetID: tu.subnet, Description: "RDSNetworkInterface",
		SecurityGroups: []string{tu.dbSG}, Tags: map[string]string{reach.LocalVPCDBTag: "rds:orders"}})
	dbs := fakeDBs{{ID: "orders", Hostname: "orders.c9akciq32.us-west-2.rds.amazonaws.com", Port: 5432, VPCID: tu.vpc},
		{ID: "untagged", Hostname: "untagged.c9akciq32.us-west-2.rds.amazonaws.com", Port: 5432, VPCID: tu.vpc}}
	src := reach.Sources{EC2: tu.c, Pods: tu.pods, DBs: dbs}
	tcp5432 := reach.Flow{Protocol: cloud.ProtocolTCP, Port: 5432}
	for _, tc := range []struct {
		src, dst string
		want     bool
	}{
		{"pod/default/postgres-test", "db/orders", true},
		{"pod/default/postgres-test-no-sa", "db/orders", false},
		{"pod/default/postgres-test", "ORDERS.c9akciq32.us-west-2.rds.amazonaws.com.", true},
	} {
		in, err := src.Load(t.Context(), tc.src, tc.dst)
		if err != nil {
			t.Fatalf("%s -> %s: %v", tc.src, tc.dst, err)
		}
		if in.Dst.ENI.ID != orders.ID || in.Dst.Spec != "db/orders" || in.Dst.IP.String() != orders.PrivateIP {
			t.Errorf("%s resolved to %+v, want %s", tc.dst, in.Dst, orders.ID)
		}
		if v := reach.Evaluate(in, tcp5432); v.Allowed != tc.want {
			t.Errorf("%s -> %s: allowed %v, want %v", tc.src, tc.dst, v.Allowed, tc.want)
		}
	}
	for dst, wantErr := range map[string]string{
		"db/nope":         "db/nope: no such database instance (there are: db/orders, db/untagged)",
		"db/untagged":     "0 network interfaces are tagged podsg:attach=rds:untagged, want 1 (on AWS, name the database by its private address)",
		"svc/default/web": "a Service is judged through each of its backends",
	} {
		if _, err := src.Load(t.Context(), "pod/default/postgres-test", dst); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("Load(%s) = %v, want an error with %q", dst, err, wantErr)
		}
	}
	if _, err := reach.Load(t.Context(), tu.c, tu.pods, "pod/default/postgres-test", "db/orders"); err == nil || !strings.Contains(err.Error(), "needs the RDS API") {
		t.Errorf("without RDS: %v, want it said", err)
	}
}
