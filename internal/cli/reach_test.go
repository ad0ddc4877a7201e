package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/yaml"

	"github.com/podsg/podsg/internal/cloud"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/netpol/calicov3"
	"github.com/podsg/podsg/internal/reach"
	"github.com/podsg/podsg/internal/vpc/vpctest"
)

func TestReachFlags(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"one endpoint":            {args: []string{"reach", "eni-1"}, wantErr: "accepts 2 arg(s), received 1"},
		"tcp without port":        {args: []string{"reach", "eni-1", "eni-2"}, wantErr: "--port is required for tcp"},
		"udp without port":        {args: []string{"reach", "eni-1", "eni-2", "--protocol", "UDP"}, wantErr: "--port is required for udp"},
		"icmp with port":          {args: []string{"reach", "eni-1", "eni-2", "--protocol", "icmp", "--port", "1"}, wantErr: "--port applies to tcp and udp"},
		"unknown protocol":        {args: []string{"reach", "eni-1", "eni-2", "--protocol", "sctp", "--port", "1"}, wantErr: `--protocol "sctp": want tcp, udp or icmp`},
		"port out of range":       {args: []string{"reach", "eni-1", "eni-2", "--port", "70000"}, wantErr: "port 70000 is outside 0..65535"},
		"icmp type too big":       {args: []string{"reach", "eni-1", "eni-2", "--protocol", "icmp", "--icmp-type", "300"}, wantErr: "ICMP type 300"},
		"a Service as the source": {args: []string{"reach", "svc/shop/web", "eni-2", "--port", "80"}, wantErr: "svc/shop/web: a Service is a destination only"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Run(t.Context(), tc.args, &out, &errb); code != 1 {
				t.Fatalf("exit code %d, want 1 (stderr %q)", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.wantErr)
			}
		})
	}
}

// reachVPC is a local VPC with a database ENI that admits 5432 from the client group only,
// a client ENI, and a pod whose branch is the client ENI.
type reachVPC struct {
	env                *vpctest.Env
	c                  *cloudec2.Client
	clientSG, dbSG     string
	client, db         cloud.NetworkInterface
	dbRule             string
	pods               reach.Pods
	clientEgressRuleID string
}

func newReachVPC(t *testing.T) *reachVPC {
	t.Helper()
	ctx := t.Context()
	env := vpctest.Start(t, vpctest.Options{})
	c := env.CloudClient(t, nil)
	r := &reachVPC{env: env, c: c}
	net := vpctest.NewTutorial(t, env.Client, "10.6.0.0/16", "10.6.0.0/24")
	subnet := net.Subnet
	r.clientSG, r.dbSG, r.dbRule = net.ClientSG, net.DBSG, net.DBRule
	var err error
	if r.client, err = c.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: subnet, SecurityGroups: []string{r.clientSG}}); err != nil {
		t.Fatal(err)
	}
	if r.db, err = c.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{SubnetID: subnet, SecurityGroups: []string{r.dbSG}}); err != nil {
		t.Fatal(err)
	}
	rules, err := c.DescribeSecurityGroupRules(ctx, []string{r.clientSG})
	if err != nil || len(rules) != 1 {
		t.Fatalf("rules of the client group = %+v, %v; want its default egress", rules, err)
	}
	r.clientEgressRuleID = rules[0].ID
	r.pods = clientsetPods{fake.NewClientset(&corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "postgres-test", Annotations: map[string]string{
			"vpc.amazonaws.com/pod-eni": `[{"eniId":"` + r.client.ID + `","privateIp":"` + r.client.PrivateIP + `","vlanId":1}]`,
		}},
	})}
	return r
}

func TestReachExplains(t *testing.T) {
	r := newReachVPC(t)
	tests := map[string]struct {
		src, dst string
		flow     reach.Flow
		denied   bool
		want     []string
	}{
		"allowed by a group reference": {
			src: "pod/default/postgres-test", dst: r.db.PrivateIP, flow: reach.Flow{Protocol: "tcp", Port: 5432},
			want: []string{
				"ALLOWED: tcp 5432 from pod/default/postgres-test (" + r.client.PrivateIP + ") to " + r.db.PrivateIP + "\n",
				"egress from " + r.client.ID + " (interface, " + r.client.PrivateIP + "), groups " + r.clientSG + " (RDSDbAccessSG)\n",
				"  allowed by " + r.clientSG + " (RDSDbAccessSG) " + r.clientEgressRuleID + ": all traffic to 0.0.0.0/0\n",
				"ingress to " + r.db.ID + " (interface, " + r.db.PrivateIP + "), groups " + r.dbSG + " (RDSDbSG)\n",
				"  allowed by " + r.dbSG + " (RDSDbSG) " + r.dbRule + ": tcp 5432 from " + r.clientSG + " (RDSDbAccessSG), which " + r.client.ID + " carries\n",
				"Replies are allowed too",
			},
		},
		"denied: other port, the rules listed": {
			src: r.client.ID, dst: r.db.ID, flow: reach.Flow{Protocol: "tcp", Port: 5433}, denied: true,
			want: []string{
				"DENIED: tcp 5433 from " + r.client.ID + " (" + r.client.PrivateIP + ") to " + r.db.ID + " (" + r.db.PrivateIP + ")\n",
				"  allowed by " + r.clientSG + " (RDSDbAccessSG) " + r.clientEgressRuleID + ": all traffic to 0.0.0.0/0\n",
				"  denied: no ingress rule allows tcp 5433 from " + r.client.PrivateIP + "\n" +
					"    " + r.dbSG + " (RDSDbSG) " + r.dbRule + ": tcp 5432 from " + r.clientSG + " (RDSDbAccessSG)\n",
			},
		},
		"denied at ingress: icmp to the client": {
			src: r.db.ID, dst: r.client.ID, flow: reach.Flow{Protocol: "icmp", ICMPType: 8}, denied: true,
			want: []string{
				"DENIED: icmp type 8 code 0 from ",
				"ingress to " + r.client.ID + " (interface, " + r.client.PrivateIP + "), groups " + r.clientSG + " (RDSDbAccessSG)\n  denied: no ingress rule allows icmp type 8 code 0 from " + r.db.PrivateIP + "\n",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := runReach(t.Context(), r.c, r.pods, nil, tc.src, tc.dst, tc.flow, &out)
			var coded interface{ ExitCode() int }
			switch {
			case tc.denied && (!errors.As(err, &coded) || coded.ExitCode() != 2):
				t.Fatalf("err = %v, want one with exit code 2", err)
			case !tc.denied && err != nil:
				t.Fatalf("err = %v, want nil", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// TestReachCommand runs the command line against the local VPC's endpoint: flags reach the
// client: an allowed flow exits 0 and a denied one 2, each with its verdict on stdout.
func TestReachCommand(t *testing.T) {
	r := newReachVPC(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "test") // the default chain finds these, and asks no metadata service
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	var out, errb bytes.Buffer
	args := []string{"reach", r.client.ID, r.db.PrivateIP, "--port", "5432", "--ec2-endpoint", r.env.URL, "--region", vpctest.Region}
	if code := Run(t.Context(), args, &out, &errb); code != 0 {
		t.Fatalf("exit code %d, want 0; stderr %q", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "ALLOWED: tcp 5432 from "+r.client.ID) {
		t.Errorf("stdout %q, want the verdict first", out.String())
	}
	out.Reset()
	args[4] = "5433"
	if code := Run(t.Context(), args, &out, &errb); code != 2 || !strings.HasPrefix(out.String(), "DENIED: tcp 5433") {
		t.Errorf("denied flow: exit code %d, stdout %q; want 2 and the verdict", code, out.String())
	}
}

func TestRuleString(t *testing.T) {
	groups := map[string]reach.Group{"sg-1": {ID: "sg-1", Name: "web"}}
	tests := map[string]struct {
		rule cloud.SecurityGroupRule
		want string
	}{
		"all traffic":        {cloud.SecurityGroupRule{Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: "0.0.0.0/0"}, "all traffic to 0.0.0.0/0"},
		"one port":           {cloud.SecurityGroupRule{Protocol: "tcp", FromPort: 5432, ToPort: 5432, ReferencedGroupID: "sg-1"}, "tcp 5432 from sg-1 (web)"},
		"port range":         {cloud.SecurityGroupRule{Protocol: "udp", FromPort: 9000, ToPort: 9100, CIDR: "10.0.0.0/8"}, "udp 9000-9100 from 10.0.0.0/8"},
		"all ports":          {cloud.SecurityGroupRule{Protocol: "tcp", FromPort: 0, ToPort: 65535, CIDR: "10.0.0.0/8"}, "tcp all ports from 10.0.0.0/8"},
		"protocol number":    {cloud.SecurityGroupRule{Protocol: "6", FromPort: 22, ToPort: 22, CIDR: "10.0.0.0/8"}, "tcp 22 from 10.0.0.0/8"},
		"all icmp":           {cloud.SecurityGroupRule{Protocol: "icmp", FromPort: -1, ToPort: -1, CIDR: "10.0.0.0/8"}, "all icmp from 10.0.0.0/8"},
		"icmp type":          {cloud.SecurityGroupRule{Protocol: "icmp", FromPort: 8, ToPort: -1, CIDR: "10.0.0.0/8"}, "icmp type 8 from 10.0.0.0/8"},
		"icmp type and code": {cloud.SecurityGroupRule{Protocol: "icmp", FromPort: 3, ToPort: 4, CIDR: "10.0.0.0/8"}, "icmp type 3 code 4 from 10.0.0.0/8"},
		"other protocol":     {cloud.SecurityGroupRule{Protocol: "50", FromPort: -1, ToPort: -1, CIDR: "10.0.0.0/8"}, "protocol 50 from 10.0.0.0/8"},
		"unnamed group":      {cloud.SecurityGroupRule{Protocol: "-1", ReferencedGroupID: "sg-2"}, "all traffic from sg-2"},
		"ipv6":               {cloud.SecurityGroupRule{Protocol: "-1", CIDRv6: "::/0"}, "all traffic from ::/0"},
		"prefix list":        {cloud.SecurityGroupRule{Egress: true, Protocol: "tcp", FromPort: 443, ToPort: 443, PrefixListID: "pl-1"}, "tcp 443 to prefix list pl-1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ruleString(tc.rule, groups); got != tc.want {
				t.Errorf("ruleString = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestWriteVerdictPrefixLists: a side only a prefix-list rule might allow leaves the verdict
// open, and says so, unless the other side denies anyway.
func TestWriteVerdictPrefixLists(t *testing.T) {
	pl := reach.Match{Group: reach.Group{ID: "sg-1"}, Rule: cloud.SecurityGroupRule{ID: "sgr-1", Egress: true, Protocol: "tcp", FromPort: 443, ToPort: 443, PrefixListID: "pl-1"}}
	allow := reach.Match{Group: reach.Group{ID: "sg-2"}, Rule: cloud.SecurityGroupRule{ID: "sgr-2", Protocol: "-1", CIDR: "0.0.0.0/0"}}
	tests := map[string]struct {
		egress, ingress reach.Side
		want            string
	}{
		"egress undecided, ingress allows": {
			egress: reach.Side{Unknown: []reach.Match{pl}}, ingress: reach.Side{Allowing: []reach.Match{allow}},
			want: "DENIED unless a prefix list named below holds the peer's address: ",
		},
		"egress undecided, ingress denies": {
			egress: reach.Side{Unknown: []reach.Match{pl}}, ingress: reach.Side{},
			want: "DENIED: ",
		},
		"egress allows, ingress undecided": {
			egress: reach.Side{Allowing: []reach.Match{allow}}, ingress: reach.Side{Unknown: []reach.Match{pl}},
			want: "DENIED unless",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			v := reach.Verdict{Flow: reach.Flow{Protocol: "tcp", Port: 443}, Egress: tc.egress, Ingress: tc.ingress}
			if err := writeVerdict(&out, v, nil); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), tc.want) {
				t.Errorf("output starts %q, want %q", out.String(), tc.want)
			}
			if !strings.Contains(out.String(), "not checked: sg-1 sgr-1: tcp 443 to prefix list pl-1") {
				t.Errorf("output does not name the prefix-list rule:\n%s", out.String())
			}
		})
	}
}

// TestReachWithPolicies: with a cluster, reach judges the policy layers too; the seed's
// Calico default-deny denies what security groups allow, and the explanation names the layer,
// the policies and the rule at each direction.
func TestReachWithPolicies(t *testing.T) {
	r := newReachVPC(t)
	seed, err := os.ReadFile("../netpol/testdata/seed-003-calico.yaml")
	if err != nil {
		t.Fatal(err)
	}
	objs := []crclient.Object{&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "postgres-test"},
		Status: corev1.PodStatus{PodIP: r.client.PrivateIP}}}
	for _, doc := range strings.Split(string(seed), "\n---\n") {
		var o crclient.Object = &calicov3.GlobalNetworkPolicy{}
		if strings.Contains(doc, "kind: NetworkPolicy") {
			o = &calicov3.NetworkPolicy{}
		}
		if err := yaml.UnmarshalStrict([]byte(doc), o); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	// A policy podsg-agent refuses: left out of the verdict, as the nodes leave it out, and named.
	objs = append(objs, &calicov3.GlobalNetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "untracked"},
		Spec: calicov3.GlobalNetworkPolicySpec{PolicySpec: calicov3.PolicySpec{Selector: "all()"}, DoNotTrack: true}})
	cluster := crfake.NewClientBuilder().WithScheme(policyScheme()).WithObjects(objs...).Build()
	var out bytes.Buffer
	err = runReach(t.Context(), r.c, r.pods, cluster, "pod/default/postgres-test", r.db.PrivateIP, reach.Flow{Protocol: "tcp", Port: 5432}, &out)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != 2 {
		t.Fatalf("err = %v, want one with exit code 2:\n%s", err, out.String())
	}
	for _, w := range []string{
		"DENIED: tcp 5432 from pod/default/postgres-test (" + r.client.PrivateIP + ") to " + r.db.PrivateIP + "\n",
		"Security groups: ALLOWED\n",
		"Network policy: DENIED (ClusterNetworkPolicy Admin tier, then Calico's default tier with NetworkPolicy at order 1000, then Baseline tier)\n",
		"egress from pod/default/postgres-test (" + r.client.PrivateIP + "): denied by Calico default tier: GlobalNetworkPolicy allow-dns-egress,GlobalNetworkPolicy default-deny (end of tier)\n",
		"  ClusterNetworkPolicy Admin tier: NoDecision (",
		"ingress to " + r.db.PrivateIP + ": no policy applies (not a pod",
		"(left out, as podsg-agent does not enforce it: GlobalNetworkPolicy untracked: spec.doNotTrack applies to host endpoints, which podsg does not police)\n",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	if strings.Contains(out.String(), "Replies are allowed") {
		t.Errorf("a denied flow's explanation speaks of replies:\n%s", out.String())
	}
}

// fakeDBs lists database instances.
type fakeDBs []reach.DBInstance

func (f fakeDBs) DBInstances(context.Context) ([]reach.DBInstance, error) { return f, nil }

// TestReachService: a Service destination is judged for each ready backend, on the port its
// endpoint slice gives (the named targetPort resolved), by security groups and by the
// policies, which resolve the policy's named port on the backend pod; one backend denied
// makes the answer DENIED, naming it.
func TestReachService(t *testing.T) {
	r := newReachVPC(t)
	// db-2's interface carries the client group only: no ingress rule.
	other, err := r.c.CreateNetworkInterface(t.Context(), cloud.CreateNetworkInterfaceInput{SubnetID: r.db.SubnetID, SecurityGroups: []string{r.clientSG}})
	if err != nil {
		t.Fatal(err)
	}
	pg := corev1.ContainerPort{Name: "pg", ContainerPort: 5432}
	backend := func(name, ip string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{"app": "db"}},
			Spec:   corev1.PodSpec{Containers: []corev1.Container{{Name: "pg", Ports: []corev1.ContainerPort{pg}}}},
			Status: corev1.PodStatus{PodIP: ip}}
	}
	client := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "postgres-test", Labels: map[string]string{"role": "client"},
		Annotations: map[string]string{"vpc.amazonaws.com/pod-eni": `[{"eniId":"` + r.client.ID + `","privateIp":"` + r.client.PrivateIP + `","vlanId":1}]`}},
		Status: corev1.PodStatus{PodIP: r.client.PrivateIP}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "sql", Port: 15432, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("pg")}}}}
	sliceFor := func(pods ...*corev1.Pod) *discoveryv1.EndpointSlice {
		name, proto, port := "sql", corev1.ProtocolTCP, int32(5432)
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-abcde",
			Labels: map[string]string{discoveryv1.LabelServiceName: "db"}}, AddressType: discoveryv1.AddressTypeIPv4,
			Ports: []discoveryv1.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}}}
		for _, p := range pods {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{p.Status.PodIP},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}})
		}
		return s
	}
	db1, db2 := backend("db-1", r.db.PrivateIP), backend("db-2", other.PrivateIP)
	pgPort := intstr.FromString("pg")
	onlyClients := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "db-from-clients"},
		Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"role": "client"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &pgPort}}}}}}
	k := clientsetPods{fake.NewClientset(client, db1, db2, svc, sliceFor(db1, db2))}
	cluster := crfake.NewClientBuilder().WithScheme(policyScheme()).WithObjects(client, db1, db2, onlyClients).Build()
	var out bytes.Buffer
	err = runReachWith(t.Context(), reachDeps{ec2: r.c, pods: k, services: k, cluster: cluster}, "pod/default/postgres-test", "svc/default/db",
		reach.Flow{Protocol: "tcp", Port: 15432}, &out)
	var coded interface{ ExitCode() int }
	if !errors.As(err, &coded) || coded.ExitCode() != 2 || !strings.Contains(err.Error(), "denied to pod/default/db-2") {
		t.Fatalf("err = %v, want exit code 2 naming db-2:\n%s", err, out.String())
	}
	for _, w := range []string{
		"DENIED to 1 of 2 backends: tcp 15432 from pod/default/postgres-test to svc/default/db (port 15432, targetPort pg; kube-proxy sends it to one ready backend)\n" +
			"  pod/default/db-1 (" + r.db.PrivateIP + ") port 5432: ALLOWED\n" +
			"  pod/default/db-2 (" + other.PrivateIP + ") port 5432: DENIED\n",
		"── backend 1 of 2: pod/default/db-1, tcp 5432 ──\nALLOWED: tcp 5432 from pod/default/postgres-test (" + r.client.PrivateIP + ") to pod/default/db-1 (" + r.db.PrivateIP + ")\n",
		"ingress to pod/default/db-1 (" + r.db.PrivateIP + "): allowed by Calico default tier: NetworkPolicy default/db-from-clients spec.ingress[0]\n",
		"── backend 2 of 2: pod/default/db-2, tcp 5432 ──\nDENIED: tcp 5432 from pod/default/postgres-test (" + r.client.PrivateIP + ") to pod/default/db-2 (" + other.PrivateIP + ")\n",
		"  denied: no ingress rule allows tcp 5432 from " + r.client.PrivateIP + "\n",
	} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q:\n%s", w, out.String())
		}
	}
	t.Log("\n" + out.String()) // the README's example: go test -v -run TestReachService

	// No ready backend: kube-proxy rejects; no other layer is asked.
	k = clientsetPods{fake.NewClientset(client, svc, sliceFor())}
	out.Reset()
	err = runReachWith(t.Context(), reachDeps{ec2: r.c, pods: k, services: k}, "pod/default/postgres-test", "svc/default/db", reach.Flow{Protocol: "tcp", Port: 15432}, &out)
	if !errors.As(err, &coded) || coded.ExitCode() != 2 || !strings.Contains(out.String(), "DENIED: tcp 15432 from pod/default/postgres-test to svc/default/db\n"+
		"svc/default/db port 15432/TCP: no ready backend: it has no selector and no endpoint slice lists an IPv4 endpoint: nothing is behind it, so kube-proxy rejects the connection") {
		t.Fatalf("err = %v, output %q; want exit code 2 and no ready backend", err, out.String())
	}

	// Headless: the client dials db-1's address itself, on the port it chose (not the
	// Service's 15432, nor its targetPort through kube-proxy).
	headless := svc.DeepCopy()
	headless.Name, headless.Spec.ClusterIP = "db-direct", corev1.ClusterIPNone
	direct := sliceFor(db1)
	direct.Name, direct.Labels[discoveryv1.LabelServiceName] = "db-direct-abcde", "db-direct"
	k = clientsetPods{fake.NewClientset(client, db1, headless, direct)}
	out.Reset()
	err = runReachWith(t.Context(), reachDeps{ec2: r.c, pods: k, services: k, cluster: cluster}, "pod/default/postgres-test", "svc/default/db-direct",
		reach.Flow{Protocol: "tcp", Port: 5432}, &out)
	if err != nil {
		t.Fatalf("headless: %v\n%s", err, out.String())
	}
	want := "ALLOWED to every backend: tcp 5432 from pod/default/postgres-test to svc/default/db-direct (headless, no ClusterIP: DNS answers with " +
		"the ready backends' addresses and the client connects to one directly on port 5432, with no kube-proxy translation)\n" +
		"  pod/default/db-1 (" + r.db.PrivateIP + ") port 5432: ALLOWED\n"
	if !strings.HasPrefix(out.String(), want) {
		t.Errorf("headless: output\n%s\nwant it to start with\n%s", out.String(), want)
	}
	t.Log("\n" + out.String())
}

// TestReachDatabase: a database by db/ID is its interface: security groups allow the client,
// and the source pod's egress policy still applies.
func TestReachDatabase(t *testing.T) {
	r := newReachVPC(t)
	orders, err := r.c.CreateNetworkInterface(t.Context(), cloud.CreateNetworkInterfaceInput{SubnetID: r.db.SubnetID,
		SecurityGroups: []string{r.dbSG}, Tags: map[string]string{reach.LocalVPCDBTag: "rds:orders"}})
	if err != nil {
		t.Fatal(err)
	}
	dbs := fakeDBs{{ID: "orders", Hostname: "orders.c9akciq32.us-west-2.rds.amazonaws.com", Port: 5432}}
	client := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "postgres-test", Labels: map[string]string{"role": "client"}},
		Status: corev1.PodStatus{PodIP: r.client.PrivateIP}}
	denyEgress := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "deny-egress"},
		Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}}
	for _, tc := range []struct {
		name   string
		objs   []crclient.Object
		denied bool
		want   []string
	}{
		{name: "allowed", objs: []crclient.Object{client}, want: []string{
			"ALLOWED: tcp 5432 from pod/default/postgres-test (" + r.client.PrivateIP + ") to db/orders (" + orders.PrivateIP + ")\n",
			"ingress to " + orders.ID + " (interface, " + orders.PrivateIP + "), groups " + r.dbSG + " (RDSDbSG)\n"}},
		{name: "egress policy", objs: []crclient.Object{client, denyEgress}, denied: true, want: []string{
			"DENIED: tcp 5432 from pod/default/postgres-test (" + r.client.PrivateIP + ") to db/orders (" + orders.PrivateIP + ")\n",
			"Security groups: ALLOWED\n",
			"egress from pod/default/postgres-test (" + r.client.PrivateIP + "): denied by Calico default tier: NetworkPolicy default/deny-egress (end of tier)\n",
			"ingress to db/orders (" + orders.PrivateIP + "): no policy applies"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := crfake.NewClientBuilder().WithScheme(policyScheme()).WithObjects(tc.objs...).Build()
			var out bytes.Buffer
			err := runReachWith(t.Context(), reachDeps{ec2: r.c, pods: r.pods, dbs: dbs, cluster: cluster}, "pod/default/postgres-test", "db/orders",
				reach.Flow{Protocol: "tcp", Port: 5432}, &out)
			var coded interface{ ExitCode() int }
			if tc.denied != (errors.As(err, &coded) && coded.ExitCode() == 2) || !tc.denied && err != nil {
				t.Fatalf("err = %v, denied %v:\n%s", err, tc.denied, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			t.Log("\n" + out.String()) // the README's example: go test -v -run TestReachDatabase
		})
	}
}
