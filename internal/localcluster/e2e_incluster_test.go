package localcluster_test

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// controllerPod is a podsg-controller pod as the API shows it.
type controllerPod struct {
	Name, Node string
	Ready      bool
}

func (c *live) controllerPods() []controllerPod {
	c.t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string  `json:"name"`
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Spec   struct{ NodeName string } `json:"spec"`
			Status struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		} `json:"items"`
	}
	out := c.kubectl("", "get", "pods", "--namespace=podsg-system", "-l", "app.kubernetes.io/name=podsg-controller", "-o", "json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		c.t.Fatal(err)
	}
	var pods []controllerPod
	for _, p := range list.Items {
		if p.Metadata.DeletionTimestamp != nil {
			continue
		}
		cp := controllerPod{Name: p.Metadata.Name, Node: p.Spec.NodeName}
		for _, cond := range p.Status.Conditions {
			cp.Ready = cp.Ready || (cond.Type == "Ready" && cond.Status == "True")
		}
		pods = append(pods, cp)
	}
	return pods
}

// leaseHolder is the pod holding podsg-controller's leader lease: controller-runtime's
// identity is the pod's hostname (its name), "_", and a UUID.
func (c *live) leaseHolder() string {
	c.t.Helper()
	out, err := c.kubectlErr("", "get", "lease", "podsg-controller", "--namespace=podsg-system", "-o", "jsonpath={.spec.holderIdentity}")
	if err != nil {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimSpace(out), "_")
	return name
}

// checkControllerHandover: podsg-controller runs in-cluster as two ready pods (both serve the
// webhooks) and one of them holds the lease; once the leader pod is killed, the other takes
// the lease over and serves a new branch pod (its branch ENI annotated), with the webhook
// reached through the Service's remaining endpoint.
func (c *live) checkControllerHandover() {
	c.t.Helper()
	pods := c.controllerPods()
	ready := 0
	for _, p := range pods {
		if p.Ready {
			ready++
		}
	}
	if len(pods) != 2 || ready != 2 {
		c.t.Fatalf("podsg-controller pods: %+v, want 2 ready", pods)
	}
	var leader string
	err := wait.PollUntilContextTimeout(c.t.Context(), time.Second, time.Minute, true, func(context.Context) (bool, error) {
		leader = c.leaseHolder()
		return leader == pods[0].Name || leader == pods[1].Name, nil
	})
	if err != nil {
		c.t.Fatalf("lease podsg-system/podsg-controller is held by %q, want one of %+v: %v", leader, pods, err)
	}
	c.t.Logf("podsg-controller pods %+v, leader %s: killing it", pods, leader)
	c.kubectl("", "delete", "pod", "--namespace=podsg-system", leader, "--grace-period=0", "--force", "--wait=false")
	// The lease lasts 15 s (controller-runtime's default) after the killed leader's last
	// renewal; then a surviving pod, the old follower or the Deployment's new one, takes it.
	var holder string
	err = wait.PollUntilContextTimeout(c.t.Context(), time.Second, 2*time.Minute, true, func(context.Context) (bool, error) {
		holder = c.leaseHolder()
		return holder != "" && holder != leader, nil
	})
	if err != nil {
		c.t.Fatalf("after killing leader %s, the lease is still held by %q: %v", leader, holder, err)
	}
	c.t.Logf("lease handed over to %s", holder)
	// A new branch pod now needs the new leader (its branch ENI) and a webhook replica (the
	// mutation that asks for vpc.amazonaws.com/pod-eni).
	c.kubectl("", "scale", "deployment/branch", "--replicas=7")
	c.waitRollout("branch")
	out := c.kubectl("", "get", "pods", "-l", "app=branch", "-o", `jsonpath={range .items[*]}{.metadata.name}{"\t"}{.metadata.annotations.vpc\.amazonaws\.com/pod-eni}{"\n"}{end}`)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, eni, _ := strings.Cut(l, "\t")
		if !strings.Contains(eni, "eni-") {
			c.t.Errorf("branch pod %s has no branch ENI after the handover: annotation %q", name, eni)
		}
	}
	c.kubectl("", "scale", "deployment/branch", "--replicas=6")
	c.waitRollout("branch")
	// The Deployment is whole again: two ready replicas.
	err = wait.PollUntilContextTimeout(c.t.Context(), time.Second, 3*time.Minute, true, func(context.Context) (bool, error) {
		n := 0
		for _, p := range c.controllerPods() {
			if p.Ready {
				n++
			}
		}
		return n == 2, nil
	})
	if err != nil {
		c.t.Errorf("podsg-controller did not get back to 2 ready pods: %+v: %v", c.controllerPods(), err)
	}
}
