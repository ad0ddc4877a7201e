package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/cluster"
	"github.com/podsg/podsg/internal/images"
)

// running checks that a local cluster runs at o.StateDir, for the commands that change one.
func (o *Options) running() error {
	if _, err := os.Stat(o.StateDir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no local cluster at %s: run podsg local up first", o.StateDir)
	}
	if _, ok := o.vpcDaemon().Running(); !ok {
		return fmt.Errorf("the local cluster at %s is not running (podsg-vpc is stopped): run podsg local up", o.StateDir)
	}
	return nil
}

// AddNode launches one more instance, in the next subnet in turn, runs a node in it and waits
// until it is Ready. It returns the node's name.
func AddNode(ctx context.Context, o Options, out io.Writer) (string, error) {
	if err := o.absStateDir(); err != nil {
		return "", err
	}
	o.recall()
	o.Nodes = 1 // validate's bounds; the count that matters is checked below
	if err := o.validate(); err != nil {
		return "", err
	}
	if err := o.running(); err != nil {
		return "", err
	}
	recorded, err := o.nodes()
	if err != nil {
		return "", err
	}
	if len(recorded) >= maxNodes {
		return "", fmt.Errorf("the local cluster has %d nodes already, the most that fit on one machine", len(recorded))
	}
	step := func(format string, args ...any) { _, _ = fmt.Fprintf(out, "• "+format+"\n", args...) }
	net, err := ensureNetwork(ctx, EC2Client())
	if err != nil {
		return "", err
	}
	cp, err := o.controlPlane(net.HostIP)
	if err != nil {
		return "", err
	}
	imgs, err := o.nodeImages()
	if err != nil {
		return "", err
	}
	spec, err := o.launchNode(ctx, cp, net, nextIndex(recorded), imgs, step)
	if err != nil {
		return "", err
	}
	if err := o.waitNodesReady(ctx, o.kubectl(o.Kubeconfig()), []string{spec.Name}); err != nil {
		return "", err
	}
	step("node %s is Ready", spec.Name)
	return spec.Name, nil
}

// ImportImages loads images into the containerd of every node of the running local cluster,
// where pods with imagePullPolicy IfNotPresent or Never find them: the machine reaches no
// registry. A node added later (AddNode) holds only the cluster's own images.
func ImportImages(ctx context.Context, o Options, imgs []images.Image, out io.Writer) error {
	if err := o.absStateDir(); err != nil {
		return err
	}
	o.recall()
	if err := o.running(); err != nil {
		return err
	}
	specs, err := o.nodes()
	if err != nil {
		return err
	}
	for _, spec := range specs {
		node, err := cluster.NewNode(o.nodeOptions(spec, cluster.NodeCredentials{}, nil))
		if err != nil {
			return err
		}
		if err := node.Import(ctx, imgs...); err != nil {
			return err
		}
		_, _ = fmt.Fprintf(out, "• imported %d images into %s\n", len(imgs), spec.Name)
	}
	return nil
}

// RemoveNode takes a node out of the cluster as one leaves an EKS node group: it drains the
// node (its pods are evicted; a Deployment's come back on other nodes), stops podsg-agent,
// kube-proxy, the kubelet and containerd, terminates the instance and deletes the Node.
// podsg-controller then frees the node's trunk ENI and branch ENIs (its teardown of a deleted
// node); RemoveNode waits until EC2 has none left.
func RemoveNode(ctx context.Context, o Options, key string, out io.Writer) error {
	if err := o.absStateDir(); err != nil {
		return err
	}
	o.recall()
	if err := o.running(); err != nil {
		return err
	}
	recorded, err := o.nodes()
	if err != nil {
		return err
	}
	spec, err := findNode(recorded, key)
	if err != nil {
		return err
	}
	step := func(format string, args ...any) { _, _ = fmt.Fprintf(out, "• "+format+"\n", args...) }
	kubectl := o.kubectl(o.Kubeconfig())
	step("draining %s", spec.Name)
	if _, err := kubectl(ctx, "", "drain", spec.Name, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=180s"); err != nil && !notFound(err) {
		return err
	}
	step("stopping podsg-agent, kube-proxy, kubelet and containerd on %s", spec.Name)
	if err := o.stopNode(ctx, spec); err != nil {
		return err
	}
	c := EC2Client()
	step("terminating instance %s", spec.InstanceID)
	if _, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{spec.InstanceID}}); err != nil && !isCode(err, "InvalidInstanceID.NotFound") {
		return fmt.Errorf("terminating %s: %w", spec.InstanceID, err)
	}
	enis, err := nodeENIs(ctx, c, spec.Name)
	if err != nil {
		return err
	}
	step("deleting Node %s; podsg-controller frees its %s", spec.Name, describeENIs(enis))
	if _, err := kubectl(ctx, "", "delete", "node", spec.Name, "--ignore-not-found", "--wait=true"); err != nil {
		return err
	}
	if err := waitENIsFreed(ctx, c, spec.Name); err != nil {
		return err
	}
	step("freed in EC2: %s", describeENIs(enis))
	if err := writeJSON(o.path("nodes.json"), withoutNode(recorded, spec)); err != nil {
		return err
	}
	return os.RemoveAll(o.path("agents", spec.InstanceID))
}

func notFound(err error) bool { return strings.Contains(strings.ToLower(err.Error()), "not found") }

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// nodeENIs lists the ENIs podsg-controller made for node: its trunk and branches carry the
// node's name.
func nodeENIs(ctx context.Context, c *ec2.Client, node string) ([]types.NetworkInterface, error) {
	out, err := c.DescribeNetworkInterfaces(ctx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		filter("tag:"+cloud.TagCluster, ClusterName), filter("tag:"+cloud.TagNode, node)}})
	if err != nil {
		return nil, fmt.Errorf("listing the ENIs of node %s: %w", node, err)
	}
	return out.NetworkInterfaces, nil
}

// waitENIsFreed waits until EC2 holds no ENI podsg-controller made for node.
func waitENIsFreed(ctx context.Context, c *ec2.Client, node string) error {
	var left []types.NetworkInterface
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		var err error
		left, err = nodeENIs(ctx, c, node)
		return err == nil && len(left) == 0, err
	})
	if err != nil {
		return fmt.Errorf("waiting for podsg-controller to free the ENIs of node %s (left: %s): %w", node, describeENIs(left), err)
	}
	return nil
}

// describeENIs says "trunk eni-… and 2 branch ENIs".
func describeENIs(enis []types.NetworkInterface) string {
	var trunks []string
	branches := 0
	for _, e := range enis {
		switch e.InterfaceType {
		case types.NetworkInterfaceTypeTrunk:
			trunks = append(trunks, "trunk "+aws.ToString(e.NetworkInterfaceId))
		case types.NetworkInterfaceTypeBranch:
			branches++
		}
	}
	if len(trunks) == 0 {
		trunks = []string{"no trunk"}
	}
	unit := "branch ENIs"
	if branches == 1 {
		unit = "branch ENI"
	}
	return fmt.Sprintf("%s and %d %s", strings.Join(trunks, ", "), branches, unit)
}
