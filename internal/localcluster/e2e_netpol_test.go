package localcluster_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/localcluster"
	"github.com/podsg/podsg/internal/testenv"
)

// TestSeedNetworkPolicyRecipe is the seed's network policy recipe (003_*) in the local
// cluster, judged by packets between real pods, which podsg-agent's ruleset on the node decides:
//  1. the Kubernetes form, namespace default-deny plus the DNS allow rule, verbatim: pods resolve
//     names through CoreDNS and reach nothing else, and a pod isolated this way still turns
//     Ready by its httpGet readiness probe (its node's traffic is always allowed);
//  2. the Calico manifests verbatim: GlobalNetworkPolicy default-deny's all() selects every pod,
//     CoreDNS included, so DNS is dropped at CoreDNS's ingress (allow-dns-egress only opens the
//     pods' egress), and it denies every pod's other egress, the my-sa pod's to web too: with
//     Calico itself the same manifests do the same. The seed means DNS to keep working (its rule
//     is there for that); Calico's documentation keeps kube-system out of such a policy's
//     selector, which the seed's copy does not;
//  3. netpol-sa-demo alone: web admits only the pod running as my-sa; the user bound to
//     readonly-sa-role cannot relabel my-sa (Forbidden), and when an admin does, the agent
//     follows the ServiceAccount's labels and the my-sa pod is cut off too.
func TestSeedNetworkPolicyRecipe(t *testing.T) {
	testenv.RequireRoot(t)
	o := localcluster.Options{Nodes: 1, KubeBinDir: testenv.KubeBinDir(t), BinDir: buildAll(t), StateDir: varLibStateDir(t)}
	downAtCleanup(t, o)
	if err := localcluster.Up(t.Context(), o, testWriter{t}); err != nil {
		t.Fatal(err)
	}
	c := &live{t: t, o: o}
	c.kubectl("", "label", "namespace", "kube-system", "name=kube-system", "--overwrite")
	c.kubectl("", "apply", "-f", "../netpol/testdata/seed-003-rbac.yaml")
	const busybox = "--image=podsg.local/busybox:latest"
	c.kubectl("", "run", "web", busybox, "--image-pull-policy=IfNotPresent", "--restart=Never", "--labels=app=web", "--command", "--",
		"sh", "-c", "mkdir -p /tmp/w && echo hello > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w")
	c.kubectl("", "run", "client", busybox, "--image-pull-policy=IfNotPresent", "--restart=Never", "--command", "--", "sleep", "3600")
	c.kubectl("", "run", "client-sa", busybox, "--image-pull-policy=IfNotPresent", "--restart=Never",
		`--overrides={"spec":{"serviceAccountName":"my-sa"}}`, "--command", "--", "sleep", "3600")
	c.kubectl("", "wait", "--for=condition=Ready", "pod/web", "pod/client", "pod/client-sa", "--timeout=180s")
	web := strings.TrimSpace(c.kubectl("", "get", "pod", "web", "-o", "jsonpath={.status.podIP}"))

	// No policy yet: the agent enforces, and allows everything.
	c.expectWeb("client", web, true)
	c.expectDNS("client", true)

	t.Run("namespace default-deny and DNS allow", func(t *testing.T) {
		c := c.with(t)
		c.kubectl("", "apply", "-f", "testdata/seed-003-networkpolicy.yaml")
		c.expectWeb("client", web, false)
		c.expectWeb("client-sa", web, false)
		c.expectDNS("client", true)
		// Isolated, a pod is still probed by its node's kubelet: NetworkPolicy always allows
		// a pod's own node, and the kubelet's probes must come from the node's address.
		c.kubectl(`apiVersion: v1
kind: Pod
metadata: {name: probed, labels: {app: probed}}
spec:
  restartPolicy: Never
  containers:
  - name: web
    image: podsg.local/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "mkdir -p /tmp/w && echo ok > /tmp/w/index.html && exec httpd -f -p 8080 -h /tmp/w"]
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 2
`, "apply", "-f", "-")
		c.kubectl("", "wait", "--for=condition=Ready", "pod/probed", "--timeout=120s")
		c.kubectl("", "delete", "pod", "probed", "--wait=true")
		c.kubectl("", "delete", "-f", "testdata/seed-003-networkpolicy.yaml")
		c.expectWeb("client", web, true)
	})
	t.Run("Calico manifests verbatim", func(t *testing.T) {
		c := c.with(t)
		c.kubectl("", "apply", "-f", "../netpol/testdata/seed-003-calico.yaml")
		c.expectDNS("client", false) // all() selects CoreDNS: its ingress drops the queries
		c.expectWeb("client-sa", web, false)
		c.expectWeb("client", web, false)
	})
	t.Run("service-account-scoped policy", func(t *testing.T) {
		c := c.with(t)
		c.kubectl("", "delete", "globalnetworkpolicy.projectcalico.org", "default-deny", "allow-dns-egress")
		c.expectWeb("client-sa", web, true)
		c.expectWeb("client", web, false)
		c.expectDNS("client", true)
		out, err := c.kubectlErr("", "--as=jane", "--as-group=readonly-sa-group", "-n", "default", "label", "serviceaccount", "my-sa", "name=not-my-sa", "--overwrite")
		if err == nil || !strings.Contains(out, "Forbidden") {
			t.Errorf("relabelling my-sa as readonly-sa-group: %v\n%s\nwant Forbidden", err, out)
		}
		c.kubectl("", "-n", "default", "label", "serviceaccount", "my-sa", "name=not-my-sa", "--overwrite")
		c.expectWeb("client-sa", web, false)
	})
}

// expectWeb waits until a connection from the pod to web's HTTP server on 8080 goes through
// (allowed) or does not (denied): policies reach the node's ruleset within seconds, not at once.
func (c *live) expectWeb(from, web string, allowed bool) {
	c.t.Helper()
	testenv.Eventually(c.t, 90*time.Second, func(ctx context.Context) error {
		// timeout(1), not wget's -T: Debian's busybox-static wget segfaults with -T.
		out, err := c.kubectlCtx(ctx, "exec", from, "--", "timeout", "3", "wget", "-q", "-O", "-", "http://"+web+":8080/")
		if got := err == nil && strings.TrimSpace(out) == "hello"; got != allowed {
			return fmt.Errorf("%s → web (%s:8080): reached %v, want %v: %s", from, web, got, allowed, out)
		}
		return nil
	})
}

// expectDNS waits until the pod resolves the kubernetes Service's name through CoreDNS, or
// until it cannot.
func (c *live) expectDNS(from string, resolves bool) {
	c.t.Helper()
	testenv.Eventually(c.t, 90*time.Second, func(ctx context.Context) error {
		out, err := c.kubectlCtx(ctx, "exec", from, "--", "nslookup", "kubernetes.default.svc.cluster.local")
		if got := err == nil; got != resolves {
			return fmt.Errorf("%s resolving kubernetes.default.svc.cluster.local: resolved %v, want %v: %s", from, got, resolves, out)
		}
		return nil
	})
}
