package localcluster_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// probePort is where the probed pods' web server listens and the kubelet's httpGet goes.
const probePort = 8080

// newGroup creates a security group with EC2's default rules (all egress, no ingress).
func (c *live) newGroup(name string) string {
	c.t.Helper()
	ctx, cl := c.t.Context(), c.ec2()
	vpcs, err := cl.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{})
	if err != nil || len(vpcs.Vpcs) != 1 {
		c.t.Fatalf("finding the VPC: %v", err)
	}
	sg, err := cl.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name), Description: aws.String("probed branch pods"), VpcId: vpcs.Vpcs[0].VpcId})
	if err != nil {
		c.t.Fatal(err)
	}
	return aws.ToString(sg.GroupId)
}

// probedPod applies a SecurityGroupPolicy giving pods labelled probed=<name> only group, then
// one such pod on node: busybox httpd on probePort with an httpGet readiness probe every 2 s.
// It waits until the pod runs on its branch ENI (whatever its readiness) and returns it.
//
// The webhook matches pods against the policies in its replica's cache, which may not hold a
// policy created an instant before: such a pod is admitted without the branch ENI request and
// runs with its node's groups, as on AWS (the seed: "delete and recreate the deployment";
// podsg explain says the same). The pod is then deleted and created again, as a user would,
// and the test says so; what it checks (the probes) is about the pod on its branch ENI.
func (c *live) probedPod(name, node, group string) pod {
	c.t.Helper()
	c.kubectl(`apiVersion: vpcresources.k8s.aws/v1beta1
kind: SecurityGroupPolicy
metadata: {name: `+name+`, namespace: default}
spec:
  podSelector: {matchLabels: {probed: `+name+`}}
  securityGroups: {groupIds: [`+group+`]}
`, "apply", "-f", "-")
	manifest := `apiVersion: v1
kind: Pod
metadata: {name: ` + name + `, namespace: default, labels: {probed: ` + name + `}}
spec:
  nodeSelector: {kubernetes.io/hostname: ` + node + `}
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: podsg.local/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["/bin/sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p ` + fmt.Sprint(probePort) + ` -h /www"]
    ports: [{name: http, containerPort: ` + fmt.Sprint(probePort) + `}]
    readinessProbe:
      httpGet: {path: /, port: ` + fmt.Sprint(probePort) + `}
      periodSeconds: 2
      timeoutSeconds: 1
      failureThreshold: 1
`
	c.kubectl(manifest, "create", "-f", "-")
	var p pod
	recreated := 0
	testenv.Eventually(c.t, 120*time.Second, func(ctx context.Context) error {
		out, err := c.kubectlCtx(ctx, "get", "pod", name, "--ignore-not-found", "-o",
			`jsonpath={.spec.containers[0].resources.limits.vpc\.amazonaws\.com/pod-eni}|{.status.phase}|{.status.podIP}|{.spec.nodeName}|{.metadata.annotations.vpc\.amazonaws\.com/pod-eni}`)
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "" { // deleted below; create it again
			if out, err := c.kubectlErrCtx(ctx, manifest, "create", "-f", "-"); err != nil {
				return fmt.Errorf("creating pod %s again: %w\n%s", name, err, out)
			}
			return fmt.Errorf("pod %s created again", name)
		}
		f := strings.Split(out, "|")
		if len(f) != 5 {
			return fmt.Errorf("pod %s: unexpected %q", name, out)
		}
		if f[0] == "" {
			recreated++
			c.t.Logf("pod %s was admitted without the branch ENI request (the webhook's cache had not seen policy %s yet): recreating it", name, name)
			if out, err := c.kubectlErrCtx(ctx, "", "delete", "pod", name, "--wait=true", "--timeout=60s"); err != nil {
				return fmt.Errorf("deleting pod %s: %w\n%s", name, err, out)
			}
			return fmt.Errorf("pod %s deleted to be created again (%d times)", name, recreated)
		}
		if f[1] != "Running" || f[2] == "" || f[4] == "" {
			return fmt.Errorf("pod %s not running on a branch ENI yet: phase %q, IP %q, node %q, pod-eni %q", name, f[1], f[2], f[3], f[4])
		}
		p = pod{Name: name, IP: f[2], Node: f[3], App: "probed"}
		return nil
	})
	return p
}

// ready is the pod's Ready condition: "True", "False" or "" before the kubelet set it.
func (c *live) ready(name string) string {
	c.t.Helper()
	return strings.TrimSpace(c.kubectl("", "get", "pod", name, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`))
}

// expectProbeFailures waits for the kubelet's Unhealthy events of the pod's readiness probe
// and, once there, for the pod to be NotReady: the probe is sent and does not get through.
func (c *live) expectProbeFailures(name string) string {
	c.t.Helper()
	var msg string
	testenv.Eventually(c.t, 90*time.Second, func(ctx context.Context) error {
		out, err := c.kubectlCtx(ctx, "get", "events", "--field-selector", "involvedObject.name="+name+",reason=Unhealthy",
			"-o", `jsonpath={range .items[*]}{.source.component}: {.message}{"\n"}{end}`)
		if err != nil {
			return err
		}
		if !strings.Contains(out, "kubelet: Readiness probe failed") {
			return fmt.Errorf("no readiness probe failure of %s from the kubelet yet: %q", name, out)
		}
		msg = strings.SplitN(strings.TrimSpace(out), "\n", 2)[0]
		return nil
	})
	if r := c.ready(name); r != "False" {
		c.t.Errorf("pod %s is Ready=%q after its probe failed, want False", name, r)
	}
	return msg
}

// waitReady waits, bounded, for the pod's Ready condition.
func (c *live) waitReady(name string, timeout time.Duration) {
	c.t.Helper()
	c.kubectl("", "wait", "--for=condition=Ready", "pod/"+name, fmt.Sprintf("--timeout=%ds", int(timeout.Seconds())))
}

// explain runs `podsg explain pod default/NAME` against the local VPC and the cluster.
func (c *live) explain(name string) string {
	c.t.Helper()
	code, out := podsgQuiet(c.t, "explain", "pod", "default/"+name, "--ec2-endpoint", localcluster.APIURL(), "--kubeconfig", c.o.Kubeconfig())
	if code != 0 {
		c.t.Fatalf("podsg explain pod default/%s exited %d:\n%s", name, code, out)
	}
	return out
}

// probeWarning is the start of explain's warning that the kubelet cannot probe the pod.
var probeWarning = fmt.Sprintf("The readiness probe of container web (httpGet, tcp %d) comes from the kubelet", probePort)

// instanceNetns is the network namespace of node's instance, where the kubelet runs.
func (c *live) instanceNetns(node string) string {
	names := topo.Names{ID: topo.IDFromStateDir(filepath.Join(c.o.StateDir, "vpc"))}
	return names.Instance(c.instanceOf(node))
}

// earlyDemux reads net.ipv4.tcp_early_demux in the node's namespace (a per-namespace sysctl).
func (c *live) earlyDemux(node string) string {
	c.t.Helper()
	out, err := exec.Command("ip", "netns", "exec", c.instanceNetns(node), "cat", "/proc/sys/net/ipv4/tcp_early_demux").CombinedOutput()
	if err != nil {
		c.t.Fatalf("reading tcp_early_demux of %s: %v\n%s", node, err, out)
	}
	return strings.TrimSpace(string(out))
}

func (c *live) setEarlyDemux(node, value string) {
	c.t.Helper()
	if out, err := exec.Command("ip", "netns", "exec", c.instanceNetns(node), "sysctl", "-qw", "net.ipv4.tcp_early_demux="+value).CombinedOutput(); err != nil {
		c.t.Fatalf("setting tcp_early_demux=%s on %s: %v\n%s", value, node, err, out)
	}
}

// checkProbesStrict is the seed's probe advice in strict mode (the agent's default): the
// kubelet's probes leave the node through its primary ENI and reach the pod through its branch
// ENI, so the pod's group must admit them. Without that rule the pod stays NotReady, the
// kubelet records the failures, and `podsg explain pod` warns; with it added through EC2, the
// pod turns Ready and the warning goes.
//
// Then early demux, which the agent's init container turns off in strict mode as the seed's
// DISABLE_TCP_EARLY_DEMUX does: turned back on in the node's namespace, a second pod with the
// rule stays NotReady and the first turns NotReady, and turned off again both are Ready. The
// pod's replies cross the node's namespace on their way out (in by the pod's veth, forwarded
// to its branch sub-interface), and early demux hands them to the kubelet's own socket for
// their addresses, after which the kernel drops them instead of forwarding them.
func (c *live) checkProbesStrict() {
	c.t.Helper()
	node := c.pods()[0].Node
	if got := c.earlyDemux(node); got != "0" {
		c.t.Errorf("tcp_early_demux on %s (strict mode) is %s, want 0: the agent's init container turns it off", node, got)
	}
	group, clusterSG := c.newGroup("probed-strict"), c.clusterSG()
	p := c.probedPod("probed-strict", node, group)
	failure := c.expectProbeFailures(p.Name)
	c.t.Logf("strict mode, no rule for the kubelet: %s stays NotReady; %s", p.Name, failure)
	if out := c.explain(p.Name); !strings.Contains(out, probeWarning) {
		c.t.Errorf("podsg explain pod %s does not warn that the kubelet cannot probe it:\n%s", p.Name, out)
	}

	c.allow(group, "tcp", probePort, clusterSG)
	start := time.Now()
	c.waitReady(p.Name, 90*time.Second)
	c.t.Logf("strict mode: %s Ready %v after tcp %d from the cluster group was allowed", p.Name, time.Since(start).Round(time.Second), probePort)
	if out := c.explain(p.Name); strings.Contains(out, probeWarning) {
		c.t.Errorf("podsg explain pod %s still warns about its probe with the rule in place:\n%s", p.Name, out)
	}

	c.setEarlyDemux(node, "1")
	restored := false
	defer func() {
		if !restored {
			c.setEarlyDemux(node, "0")
		}
	}()
	again := c.probedPod("probed-strict-demux", node, group)
	failure = c.expectProbeFailures(again.Name)
	c.t.Logf("strict mode, rule in place, tcp_early_demux=1 on %s: %s stays NotReady; %s", node, again.Name, failure)
	testenv.Eventually(c.t, 60*time.Second, func(context.Context) error {
		if r := c.ready(p.Name); r != "False" {
			return fmt.Errorf("%s is Ready=%q with early demux on, want False", p.Name, r)
		}
		return nil
	})
	c.setEarlyDemux(node, "0")
	restored = true
	c.waitReady(again.Name, 90*time.Second)
	c.waitReady(p.Name, 90*time.Second)
	c.t.Logf("strict mode, tcp_early_demux=0 again: %s and %s Ready", p.Name, again.Name)
	c.kubectl("", "delete", "pod", p.Name, again.Name, "--wait=false")
}

// checkProbesStandard is the probe case in standard mode, on a node whose agent started in
// that mode (a fresh instance: early demux on, as the kernel has it): the kubelet's probes go
// to the pod over its veth, not through the VPC, so a pod whose group admits nothing from the
// node turns Ready. `podsg explain pod` reads only EC2's rules and still warns.
func (c *live) checkProbesStandard(node string) {
	c.t.Helper()
	if got := c.earlyDemux(node); got != "1" {
		c.t.Errorf("tcp_early_demux on %s (standard mode, fresh node) is %s, want the kernel's default 1", node, got)
	}
	p := c.probedPod("probed-standard", node, c.newGroup("probed-standard"))
	c.waitReady(p.Name, 90*time.Second)
	c.t.Logf("standard mode, no rule for the kubelet, tcp_early_demux=1: %s on %s Ready", p.Name, node)
	if out := c.explain(p.Name); !strings.Contains(out, probeWarning) {
		c.t.Errorf("podsg explain pod %s: want the probe warning (explain reads EC2's rules, not the node's mode):\n%s", p.Name, out)
	}
	c.kubectl("", "delete", "pod", p.Name, "--wait=false")
}

// switchToStandard sets the agents' enforcing mode to standard as a user would on EKS
// (`kubectl set env` on the DaemonSet) and waits until every agent runs with it. Nodes keep
// what strict mode set on them (the local rule's priority, early demux off): only a node the
// agent starts on in standard mode is a standard node.
func (c *live) switchToStandard() {
	c.t.Helper()
	c.kubectl("", "--namespace=podsg-system", "set", "env", "daemonset/podsg-agent", "POD_SG_ENFORCING_MODE=standard")
	c.kubectl("", "--namespace=podsg-system", "rollout", "status", "daemonset/podsg-agent", "--timeout=180s")
}
