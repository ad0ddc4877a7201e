package localcluster_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/podsg/podsg/internal/testenv"
)

// checkServices checks DNS and ClusterIP Services from every pod, regular and branch: each
// resolves kubernetes.default.svc.cluster.local to the kubernetes Service's ClusterIP through
// CoreDNS (kube-dns), resolves its node's private DNS name through CoreDNS's upstream, the
// VPC resolver, and reaches by name a ClusterIP Service whose every backend is a regular pod on
// another node, through kube-proxy and the VPC's fabric.
func (c *live) checkServices(pods []pod) {
	c.t.Helper()
	kubernetesIP := strings.TrimSpace(c.kubectl("", "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"))
	away := c.awayServices(pods)
	for _, p := range pods {
		c.expectResolves(p, "kubernetes.default.svc.cluster.local", kubernetesIP)
		c.expectResolves(p, p.Node, nodeIP(p.Node))
		svc := away[p.Node]
		var got string
		testenv.Eventually(c.t, 90*time.Second, func(ctx context.Context) error {
			out, err := c.kubectlCtx(ctx, "exec", p.Name, "--", "sh", "-c", "echo | nc -w 3 "+svc.name+" 9090")
			if got = strings.TrimSpace(out); err != nil || got == "" {
				return fmt.Errorf("%s (%s, %s) → service %s: %q: %w", p.Name, p.App, p.Node, svc.name, got, err)
			}
			return nil
		})
		if !slices.Contains(svc.backends, got) {
			c.t.Errorf("%s (%s, %s) → service %s answered %q, want one of its backends %v (regular pods on other nodes)", p.Name, p.App, p.Node, svc.name, got, svc.backends)
		}
	}
	c.t.Logf("%d pods resolved cluster and VPC names and reached a Service backed by other nodes' pods", len(pods))
}

// expectDNSNeedsRule shows the seed's advice by packets: CoreDNS runs as regular pods, in
// the cluster security group, so while that group does not admit DNS from the branch pods'
// group app, a branch pod's queries time out where a regular pod's are answered, and `podsg
// explain pod` warns of it; then it adds the rule (UDP and TCP 53 from app) through EC2, as a
// user would with awscli, after which the same branch pod resolves (polled: the fabric applies
// the rule asynchronously) and the warning is gone. checkServices then expects every pod to
// resolve.
func (c *live) expectDNSNeedsRule(pods []pod, app string) {
	c.t.Helper()
	const name = "kubernetes.default.svc.cluster.local"
	kubernetesIP := strings.TrimSpace(c.kubectl("", "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"))
	for _, p := range pods {
		if p.App == "regular" {
			c.expectResolves(p, name, kubernetesIP)
			break
		}
	}
	var branch pod
	for _, p := range pods {
		if p.App == "branch" {
			branch = p
			break
		}
	}
	if branch.Name == "" {
		c.t.Fatal("no branch pod")
	}
	out, err := c.kubectlErr("", "exec", branch.Name, "--", "nslookup", name)
	if err == nil || !strings.Contains(out, "timed out") {
		c.t.Errorf("%s (branch, %s) resolving %s without the DNS rule: %v\n%s\nwant a timeout: the cluster group does not admit DNS from app", branch.Name, branch.Node, name, err, out)
	}
	if out := c.explain(branch.Name); !strings.Contains(out, dnsWarning) {
		c.t.Errorf("podsg explain pod %s does not warn that DNS is blocked:\n%s", branch.Name, out)
	}
	clusterSG := c.clusterSG()
	c.allow(clusterSG, "udp", 53, app)
	c.allow(clusterSG, "tcp", 53, app)
	start := time.Now()
	c.expectResolves(branch, name, kubernetesIP)
	c.t.Logf("%s (branch) resolves %s %v after udp and tcp 53 from app were allowed", branch.Name, name, time.Since(start).Round(100*time.Millisecond))
	if out := c.explain(branch.Name); strings.Contains(out, dnsWarning) {
		c.t.Errorf("podsg explain pod %s still warns that DNS is blocked with the rule in place:\n%s", branch.Name, out)
	}
}

// dnsWarning is the start of explain's warning that the pod's groups keep DNS out.
const dnsWarning = "DNS is blocked from the pod"

// awayService is a ClusterIP Service on port 9090 whose backends are the regular pods that
// are not on one node.
type awayService struct {
	name     string
	backends []string
}

// awayServices makes, for each node of pods, a Service away-N that selects the regular pods of
// the other nodes, by labels the test puts on those pods.
func (c *live) awayServices(pods []pod) map[string]awayService {
	c.t.Helper()
	var nodes []string
	for _, p := range pods {
		if !slices.Contains(nodes, p.Node) {
			nodes = append(nodes, p.Node)
		}
	}
	slices.Sort(nodes)
	out := map[string]awayService{}
	var manifests strings.Builder
	for i, n := range nodes {
		svc := awayService{name: fmt.Sprintf("away-%d", i)}
		for _, p := range pods {
			if p.App == "regular" && p.Node != n {
				c.kubectl("", "label", "pod", p.Name, svc.name+"=yes")
				svc.backends = append(svc.backends, p.Name)
			}
		}
		if len(svc.backends) == 0 {
			c.t.Fatalf("no regular pod off node %s", n)
		}
		out[n] = svc
		fmt.Fprintf(&manifests, "---\napiVersion: v1\nkind: Service\nmetadata: {name: %s, namespace: default}\n"+
			"spec: {selector: {app: regular, %s: \"yes\"}, ports: [{port: 9090, targetPort: 9090, protocol: TCP}]}\n", svc.name, svc.name)
	}
	c.kubectl(manifests.String(), "apply", "-f", "-")
	return out
}

// expectResolves waits until pod resolves name (busybox nslookup, through the pod's
// resolv.conf) to want.
func (c *live) expectResolves(p pod, name, want string) {
	c.t.Helper()
	testenv.Eventually(c.t, 90*time.Second, func(ctx context.Context) error {
		out, err := c.kubectlCtx(ctx, "exec", p.Name, "--", "nslookup", name)
		if err != nil {
			return fmt.Errorf("%s (%s, %s) resolving %s: %w", p.Name, p.App, p.Node, name, err)
		}
		if !regexp.MustCompile(`(?m)^Address:\s*` + regexp.QuoteMeta(want) + `$`).MatchString(out) {
			return fmt.Errorf("%s (%s, %s) resolving %s: want %s, got:\n%s", p.Name, p.App, p.Node, name, want, out)
		}
		return nil
	})
}

// nodeIP is the address in a node's name (ip-10-0-0-5.us-west-2.compute.internal).
func nodeIP(node string) string {
	first, _, _ := strings.Cut(node, ".")
	return strings.ReplaceAll(strings.TrimPrefix(first, "ip-"), "-", ".")
}

// kubectlCtx runs kubectl bounded by ctx, returning its output and error without failing
// the test (for polling).
func (c *live) kubectlCtx(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := c.kubectlErrCtx(ctx, "", args...)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return out, fmt.Errorf("kubectl %s: timed out: %w", strings.Join(args, " "), err)
	}
	return out, err
}

// expectDNSOn runs a regular pod on node (one that `node add` brought) and expects it to
// resolve a cluster name through kube-dns and the node's own name through the VPC resolver:
// the added node has kube-proxy and the kubelet's clusterDNS too.
func (c *live) expectDNSOn(node string) {
	c.t.Helper()
	c.kubectl(`apiVersion: v1
kind: Pod
metadata: {name: on-added-node, namespace: default}
spec:
  nodeName: `+node+`
  terminationGracePeriodSeconds: 1
  containers:
  - {name: shell, image: podsg.local/busybox:latest, imagePullPolicy: IfNotPresent}
`, "apply", "-f", "-")
	c.kubectl("", "wait", "--for=condition=Ready", "pod/on-added-node", "--timeout=120s")
	p := pod{Name: "on-added-node", Node: node, App: "regular"}
	kubernetesIP := strings.TrimSpace(c.kubectl("", "get", "service", "kubernetes", "-o", "jsonpath={.spec.clusterIP}"))
	c.expectResolves(p, "kubernetes.default.svc.cluster.local", kubernetesIP)
	c.expectResolves(p, node, nodeIP(node))
}
