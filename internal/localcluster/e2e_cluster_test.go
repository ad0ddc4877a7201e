package localcluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/podsg/podsg/internal/cli"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// TestCluster is the local cluster's acceptance test: `podsg local up --nodes 3` spreads the
// nodes over both zones; a Deployment of 6 branch pods and one of 6 regular pods spread over
// them; between every two pods, on one node or across nodes, what gets through is exactly
// what `podsg reach` says of their security groups; a branch pod resolves names only once the
// cluster group admits DNS from its group, and a readiness-probed branch pod turns Ready only
// once its group admits the kubelet (strict mode), `podsg explain pod` warning until then;
// `podsg local node remove` of a node with branch pods reschedules its pods, frees its trunk
// and branches in EC2 and leaves nothing of it in the kernel; `node add`, with the agents
// switched to standard mode, brings a node back on which a probed branch pod turns Ready
// without that rule; `podsg local down` leaves nothing. podsg itself runs in-cluster, as
// installed from config/: two podsg-controller pods, of which killing the leader hands over
// to the other.
func TestCluster(t *testing.T) {
	testenv.RequireRoot(t)
	o := localcluster.Options{Nodes: 3, KubeBinDir: testenv.KubeBinDir(t), BinDir: buildAll(t), StateDir: varLibStateDir(t)}
	downAtCleanup(t, o)
	// podsg reach below asks EC2 through the SDK's default chain: these keep it from asking a
	// metadata service from the root namespace.
	t.Setenv("AWS_ACCESS_KEY_ID", "podsg")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "podsg")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	start := time.Now()
	if err := localcluster.Up(t.Context(), o, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	t.Logf("podsg local up --nodes 3: %v", time.Since(start).Round(100*time.Millisecond))
	c := &live{t: t, o: o}
	c.expectZones()
	app := c.appGroup()
	c.kubectl(workloads(app), "apply", "-f", "-")
	c.waitRollout("branch", "regular")

	t.Run("security group matrix", func(t *testing.T) {
		c := c.with(t)
		c.checkMatrix(c.pods(), []int{8080, 9090})
	})
	t.Run("services and DNS", func(t *testing.T) {
		c := c.with(t)
		pods := c.pods()
		c.expectDNSNeedsRule(pods, app)
		c.checkServices(pods)
	})
	t.Run("probes need the kubelet rule in strict mode", func(t *testing.T) {
		c.with(t).checkProbesStrict()
	})
	t.Run("podsg-controller leader handover", func(t *testing.T) {
		c.with(t).checkControllerHandover()
	})
	t.Run("node remove", func(t *testing.T) {
		c.with(t).removeBusiestNode()
	})
	// The node added next is the only one whose agent starts in standard mode.
	t.Run("node add in standard mode", func(t *testing.T) {
		c := c.with(t)
		c.switchToStandard()
		before := strings.Fields(c.kubectl("", "get", "nodes", "-o", "name"))
		if code, out := podsg(t, "local", "node", "add", "--state-dir", o.StateDir); code != 0 {
			t.Fatalf("podsg local node add exited %d:\n%s", code, out)
		}
		after := strings.Fields(c.kubectl("", "get", "nodes", "-o", "name"))
		if len(after) != 3 {
			t.Errorf("nodes after node add: %v, want 3", after)
		}
		for _, n := range after {
			if !slices.Contains(before, n) {
				c.expectDNSOn(strings.TrimPrefix(n, "node/"))
				c.checkProbesStandard(strings.TrimPrefix(n, "node/"))
			}
		}
	})
}

// live is a running local cluster, seen from a test.
type live struct {
	t *testing.T
	o localcluster.Options
}

func (c *live) with(t *testing.T) *live { return &live{t: t, o: c.o} }

// kubectl runs the cluster's kubectl as the admin and fails the test if it fails.
func (c *live) kubectl(stdin string, args ...string) string {
	c.t.Helper()
	out, err := c.kubectlErr(stdin, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *live) kubectlErr(stdin string, args ...string) (string, error) {
	return c.kubectlErrCtx(c.t.Context(), stdin, args...)
}

func (c *live) kubectlErrCtx(ctx context.Context, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.o.KubeBinDir, "kubectl"), append([]string{"--kubeconfig=" + c.o.Kubeconfig()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// expectZones checks that the nodes are labelled with, and spread over, both zones.
func (c *live) expectZones() {
	c.t.Helper()
	out := c.kubectl("", "get", "nodes", "-o", `jsonpath={range .items[*]}{.metadata.labels.topology\.kubernetes\.io/zone}{"\n"}{end}`)
	zones := map[string]int{}
	for _, z := range strings.Fields(out) {
		zones[z]++
	}
	if zones[localcluster.Subnets[0].AZ] == 0 || zones[localcluster.Subnets[1].AZ] == 0 {
		c.t.Errorf("nodes per zone %v, want both %s and %s", zones, localcluster.Subnets[0].AZ, localcluster.Subnets[1].AZ)
	}
}

func (c *live) ec2() *ec2.Client { return localcluster.EC2Client() }

// groupID finds a security group of the cluster's VPC by name.
func (c *live) groupID(name string) string {
	c.t.Helper()
	out, err := c.ec2().DescribeSecurityGroups(c.t.Context(), &ec2.DescribeSecurityGroupsInput{
		Filters: []types.Filter{{Name: aws.String("group-name"), Values: []string{name}}}})
	if err != nil || len(out.SecurityGroups) != 1 {
		c.t.Fatalf("finding security group %s: %v (%d found)", name, err, len(out.SecurityGroups))
	}
	return aws.ToString(out.SecurityGroups[0].GroupId)
}

func (c *live) clusterSG() string { return c.groupID("eks-cluster-sg-" + localcluster.ClusterName) }

// appGroup makes the branch pods' group, "app": it admits 8080 from the cluster security
// group (the nodes, so regular pods and the kubelet) and 9090 from itself; the cluster group
// admits 9090 from app. So 8080 flows from regular to branch pods only, and 9090 from branch
// pods to any pod, and between regular pods everything (the cluster group admits itself).
func (c *live) appGroup() string {
	c.t.Helper()
	ctx, cl := c.t.Context(), c.ec2()
	vpcs, err := cl.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) != 1 {
		c.t.Fatalf("finding the VPC: %v", err)
	}
	sg, err := cl.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("app"), Description: aws.String("branch pods"), VpcId: vpcs.Vpcs[0].VpcId})
	if err != nil {
		c.t.Fatal(err)
	}
	app, clusterSG := aws.ToString(sg.GroupId), c.clusterSG()
	c.allow(app, "tcp", 8080, clusterSG)
	c.allow(app, "tcp", 9090, app)
	c.allow(clusterSG, "tcp", 9090, app)
	return app
}

// allow adds an ingress rule to group: proto port from group src.
func (c *live) allow(group, proto string, port int32, src string) {
	c.t.Helper()
	_, err := c.ec2().AuthorizeSecurityGroupIngress(c.t.Context(), &ec2.AuthorizeSecurityGroupIngressInput{GroupId: &group, IpPermissions: []types.IpPermission{{
		IpProtocol: &proto, FromPort: &port, ToPort: &port, UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: &src}}}}})
	if err != nil {
		c.t.Fatalf("allowing %s %d from %s into %s: %v", proto, port, src, group, err)
	}
}

// workloads are two Deployments of servers that answer with their pod's name on 8080 and
// 9090: branch (a SecurityGroupPolicy gives them the app group) and regular, 6 pods each,
// spread evenly over the nodes.
func workloads(app string) string {
	deploy := func(name string) string {
		return `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `, namespace: default}
spec:
  replicas: 6
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      terminationGracePeriodSeconds: 5
      topologySpreadConstraints:
      - {maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {app: ` + name + `}}}
      containers:
      - name: server
        image: podsg.local/busybox:latest
        imagePullPolicy: IfNotPresent
        command: ["/bin/sh", "-c", "trap 'exit 0' TERM; nc -ll -p 8080 -e hostname & nc -ll -p 9090 -e hostname & wait"]
`
	}
	return `apiVersion: vpcresources.k8s.aws/v1beta1
kind: SecurityGroupPolicy
metadata: {name: app, namespace: default}
spec:
  podSelector: {matchLabels: {app: branch}}
  securityGroups: {groupIds: [` + app + `]}
` + deploy("branch") + deploy("regular")
}

func (c *live) waitRollout(deployments ...string) {
	c.t.Helper()
	for _, d := range deployments {
		c.kubectl("", "rollout", "status", "deployment/"+d, "--timeout=180s")
	}
}

// pod is a running pod of the workloads.
type pod struct {
	Name, IP, Node, App string
}

func (c *live) pods() []pod {
	c.t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string            `json:"name"`
				Labels            map[string]string `json:"labels"`
				DeletionTimestamp *string           `json:"deletionTimestamp"`
			} `json:"metadata"`
			Spec   struct{ NodeName string } `json:"spec"`
			Status struct {
				PodIP string `json:"podIP"`
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.kubectl("", "get", "pods", "-l", "app in (branch,regular)", "-o", "json")), &list); err != nil {
		c.t.Fatal(err)
	}
	var out []pod
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp == nil && p.Status.Phase == "Running" {
			out = append(out, pod{Name: p.Metadata.Name, IP: p.Status.PodIP, Node: p.Spec.NodeName, App: p.Metadata.Labels["app"]})
		}
	}
	return out
}

// probe is what one pod saw of another's port.
type probe struct {
	dst  pod
	port int
}

// reachAll has src try every probe at once, each bounded by timeout: it maps each probe to
// whether the pod it meant answered (its name, which the server prints).
func (c *live) reachAll(src pod, probes []probe, timeout int) map[probe]bool {
	c.t.Helper()
	var script strings.Builder
	for i, p := range probes {
		fmt.Fprintf(&script, "(r=$(echo | nc -w %d %s %d 2>&1); echo \"%d $r\") &\n", timeout, p.dst.IP, p.port, i)
	}
	script.WriteString("wait\n")
	out := c.kubectl("", "exec", src.Name, "--", "sh", "-c", script.String())
	got := map[probe]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var i int
		var answer string
		if n, _ := fmt.Sscanf(line, "%d %s", &i, &answer); n < 1 || i < 0 || i >= len(probes) {
			c.t.Fatalf("%s: unexpected line %q", src.Name, line)
		}
		p := probes[i]
		switch {
		case answer == p.dst.Name:
			got[p] = true
		case strings.Contains(line, "timed out"):
			got[p] = false
		default:
			c.t.Errorf("%s → %s (%s:%d) got %q: neither the pod's answer nor a timeout", src.Name, p.dst.Name, p.dst.IP, p.port, line)
		}
	}
	return got
}

// checkMatrix checks, for every ordered pair of distinct pods and every port, that a
// connection gets through exactly when `podsg reach` allows it. A flow that timed out though
// reach allows it is tried again alone with a longer timeout, so that a loaded machine is not
// mistaken for a dropped packet; one that got through though reach denies it fails at once.
func (c *live) checkMatrix(pods []pod, ports []int) {
	c.t.Helper()
	if len(pods) < 2 {
		c.t.Fatalf("%d pods: nothing to check", len(pods))
	}
	checked, crossNode := 0, 0
	for _, src := range pods {
		var probes []probe
		for _, dst := range pods {
			if dst.Name != src.Name {
				for _, port := range ports {
					probes = append(probes, probe{dst, port})
				}
			}
		}
		seen := c.reachAll(src, probes, 2)
		for _, p := range probes {
			want := c.reachVerdict(src, p)
			got, ok := seen[p]
			if ok && !got && want {
				got = c.reachAll(src, []probe{p}, 8)[p]
			}
			if !ok || got != want {
				c.t.Errorf("%s (%s, %s) → %s (%s, %s) tcp %d: got through %v, podsg reach says allowed %v",
					src.Name, src.App, src.Node, p.dst.Name, p.dst.App, p.dst.Node, p.port, got, want)
			}
			checked++
			if src.Node != p.dst.Node {
				crossNode++
			}
		}
	}
	c.t.Logf("%d flows between %d pods checked against podsg reach (%d across nodes)", checked, len(pods), crossNode)
}

// reachVerdict runs `podsg reach pod/default/SRC pod/default/DST --port P` and returns whether
// it allows the flow.
func (c *live) reachVerdict(src pod, p probe) bool {
	c.t.Helper()
	code, out := podsgQuiet(c.t, "reach", "pod/default/"+src.Name, "pod/default/"+p.dst.Name, "--port", fmt.Sprint(p.port),
		"--ec2-endpoint", localcluster.APIURL(), "--kubeconfig", c.o.Kubeconfig())
	switch code {
	case 0:
		return true
	case 2:
		return false
	}
	c.t.Fatalf("podsg reach %s %s: exit %d\n%s", src.Name, p.dst.Name, code, out)
	return false
}

// removeBusiestNode removes, with `podsg local node remove`, the node with the most branch
// pods, and checks what must follow: the Deployments whole again on the other nodes; the
// instance terminated, its trunk and branches deleted in EC2; no namespace, fabric link,
// firewall chain, mount, cgroup or process of the node left.
func (c *live) removeBusiestNode() {
	c.t.Helper()
	perNode := map[string]int{}
	for _, p := range c.pods() {
		if p.App == "branch" {
			perNode[p.Node]++
		}
	}
	node := ""
	for n, k := range perNode {
		if node == "" || k > perNode[node] || (k == perNode[node] && n < node) {
			node = n
		}
	}
	if node == "" {
		c.t.Fatal("no node runs a branch pod")
	}
	instanceID := c.instanceOf(node)
	enis := c.enisOf(node, instanceID)
	c.t.Logf("removing %s (instance %s, %d branch pods, ENIs %v)", node, instanceID, perNode[node], enis)

	if code, out := podsg(c.t, "local", "node", "remove", node, "--state-dir", c.o.StateDir); code != 0 {
		c.t.Fatalf("podsg local node remove exited %d:\n%s", code, out)
	}
	if out, err := c.kubectlErr("", "get", "node", node); err == nil {
		c.t.Errorf("node %s still exists: %s", node, out)
	}
	c.waitRollout("branch", "regular")
	for _, p := range c.pods() {
		if p.Node == node {
			c.t.Errorf("pod %s still on removed node %s", p.Name, node)
		}
	}
	c.expectTerminated(instanceID)
	for _, id := range enis {
		if _, err := c.ec2().DescribeNetworkInterfaces(c.t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}}); !isAPIError(err, "InvalidNetworkInterfaceID.NotFound") {
			c.t.Errorf("ENI %s of the removed node: %v, want InvalidNetworkInterfaceID.NotFound", id, err)
		}
	}
	c.expectNothingOfNode(node, instanceID, enis)
}

func (c *live) instanceOf(node string) string {
	c.t.Helper()
	id, err := cloud.InstanceID(strings.TrimSpace(c.kubectl("", "get", "node", node, "-o", "jsonpath={.spec.providerID}")))
	if err != nil {
		c.t.Fatal(err)
	}
	return id
}

// enisOf lists every ENI of the node: those attached to its instance (primary, the agent's
// secondary ENIs, the trunk) and the branches podsg-controller made for it.
func (c *live) enisOf(node, instanceID string) []string {
	c.t.Helper()
	var ids []string
	for _, f := range []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{instanceID}},
		{Name: aws.String("tag:" + cloud.TagNode), Values: []string{node}},
	} {
		out, err := c.ec2().DescribeNetworkInterfaces(c.t.Context(), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{f}})
		if err != nil {
			c.t.Fatal(err)
		}
		for _, e := range out.NetworkInterfaces {
			if id := aws.ToString(e.NetworkInterfaceId); !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func (c *live) expectTerminated(instanceID string) {
	c.t.Helper()
	out, err := c.ec2().DescribeInstances(c.t.Context(), &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		if !isAPIError(err, "InvalidInstanceID.NotFound") {
			c.t.Error(err)
		}
		return
	}
	for _, r := range out.Reservations {
		for _, i := range r.Instances {
			if i.State == nil || i.State.Name != types.InstanceStateNameTerminated {
				c.t.Errorf("instance %s is %v, want terminated", instanceID, i.State)
			}
		}
	}
}

// expectNothingOfNode checks the kernel and the machine for anything of a removed node.
func (c *live) expectNothingOfNode(node, instanceID string, enis []string) {
	c.t.Helper()
	names := topo.Names{ID: topo.IDFromStateDir(filepath.Join(c.o.StateDir, "vpc"))}
	namespaces := netnsWithPrefix(c.t, c.o.StateDir)
	if slices.Contains(namespaces, names.Instance(instanceID)) {
		c.t.Errorf("namespace %s of the terminated instance left", names.Instance(instanceID))
	}
	fabric := ""
	for _, ns := range namespaces {
		if strings.HasPrefix(ns, names.Prefix()+"vpc-") {
			fabric = ns
		}
	}
	links, err := exec.Command("ip", "-n", fabric, "-o", "link", "show").CombinedOutput()
	if err != nil {
		c.t.Fatalf("listing the fabric's links: %v\n%s", err, links)
	}
	rules, err := exec.Command("ip", "netns", "exec", fabric, "nft", "list", "ruleset").CombinedOutput()
	if err != nil {
		c.t.Fatalf("listing the fabric's firewall: %v\n%s", err, rules)
	}
	for _, id := range enis {
		if slices.Contains(namespaces, names.Trunk(id)) {
			c.t.Errorf("trunk namespace %s left", names.Trunk(id))
		}
		if strings.Contains(string(links), " "+topo.FabricIf(id)+"@") || strings.Contains(string(links), " "+topo.FabricIf(id)+":") {
			c.t.Errorf("fabric link %s of %s left", topo.FabricIf(id), id)
		}
		if strings.Contains(string(rules), id) {
			c.t.Errorf("firewall rules of %s left in the fabric", id)
		}
	}
	for _, dir := range []string{filepath.Join(c.o.StateDir, "nodes", instanceID), filepath.Join(c.o.StateDir, "agents", instanceID)} {
		if pids := pidsNaming(c.t, dir); len(pids) > 0 {
			c.t.Errorf("processes naming %s left: %v", dir, pids)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			c.t.Errorf("%s left (%v)", dir, err)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		c.t.Fatal(err)
	}
	if strings.Contains(string(mounts), filepath.Join(c.o.StateDir, "nodes", instanceID)) {
		c.t.Error("mounts of the removed node left")
	}
	if cg, _ := filepath.Glob("/sys/fs/cgroup/*/podsg/" + node); len(cg) > 0 {
		c.t.Errorf("cgroups of the removed node left: %v", cg)
	}
}

func isAPIError(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// podsgQuiet runs the podsg command line in this process, as podsg does, without logging
// its output (the matrix runs it hundreds of times).
func podsgQuiet(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Run(t.Context(), args, &out, &out)
	return code, out.String()
}
