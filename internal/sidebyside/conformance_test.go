//go:build awsrc

package sidebyside

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/testenv"
)

// TestMain removes the binaries built for the package's tests.
func TestMain(m *testing.M) {
	testenv.Main(m)
}

// TestAWSControllerBranchENI: AWS's vpc-resource-controller, unmodified, pointed at the local
// VPC by flags and the AWS SDK's environment variables only, gives a node a trunk, a pod a
// branch ENI with its policy's groups, and frees the branch once its cool-down has passed.
func TestAWSControllerBranchENI(t *testing.T) {
	w := newWorld(t, awsControllerFromEnv(t), 1)
	const ns = "conformance"
	workloadNamespace(t, w, ns)
	w.startController(t)
	w.waitNodesReady(t, 3*time.Minute)
	node := w.vpc.nodes[0]
	trunk := w.trunkOf(t, *node.InstanceId)
	w.expectPermission(t, trunk)
	w.waitWebhook(t, ns)

	if err := w.c.Create(t.Context(), pod(ns, "backend")); err != nil {
		t.Fatal(err)
	}
	branch := w.waitAnnotated(t, ns, "backend")
	eni := w.describeENI(t, branch.ENIID)
	var groups []string
	for _, g := range eni.Groups {
		groups = append(groups, *g.GroupId)
	}
	if slices.Sort(groups); !slices.Equal(groups, sorted(w.vpc.podGroups)) {
		t.Errorf("branch %s has groups %v, want the policy's %v", branch.ENIID, groups, w.vpc.podGroups)
	}
	if aws.ToString(eni.PrivateIpAddress) != branch.PrivateIP || aws.ToString(eni.MacAddress) != branch.IfAddress {
		t.Errorf("annotation %+v does not match the ENI (%s, %s)", branch, aws.ToString(eni.PrivateIpAddress), aws.ToString(eni.MacAddress))
	}
	assoc := w.associationOf(t, branch.ENIID)
	if aws.ToString(assoc.TrunkInterfaceId) != trunk || int(aws.ToInt32(assoc.VlanId)) != branch.VLANID {
		t.Errorf("branch association %+v, want trunk %s VLAN %d", assoc, trunk, branch.VLANID)
	}
	w.expectPermission(t, branch.ENIID)

	if err := w.c.Delete(t.Context(), pod(ns, "backend"), client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	if e := w.describeENI(t, branch.ENIID); e.Status != types.NetworkInterfaceStatusInUse {
		t.Errorf("the branch was released at once (status %s), not after its cool-down", e.Status)
	}
	// Every 2 s: the harness's describes draw on the same throttling buckets as the controller's.
	w.eventually(t, cooldown+3*time.Minute, every(2*time.Second, func(ctx context.Context) error {
		out, err := w.vpc.branches(ctx)
		if err != nil {
			return err
		}
		if _, ok := out[branch.ENIID]; ok {
			return fmt.Errorf("branch %s still exists %s after its pod was deleted", branch.ENIID, time.Since(deleted).Round(time.Second))
		}
		return nil
	}))
	if waited := time.Since(deleted); waited < cooldown {
		t.Errorf("the branch was deleted %s after its pod, before its %s cool-down", waited, cooldown)
	}
	t.Logf("branch %s (VLAN %d) deleted %s after its pod", branch.ENIID, branch.VLANID, time.Since(deleted).Round(time.Second))
	// What AWS's controller logged as errors: the local VPC answering differently from EC2
	// would show here first.
	for line := range strings.Lines(w.proc.Log()) {
		if strings.Contains(line, `"level":"error"`) {
			t.Errorf("AWS's controller logged an error: %s", line)
		}
	}
}

func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// trunkOf returns the trunk ENI attached to an instance.
func (w *world) trunkOf(t testing.TB, instance string) string {
	t.Helper()
	out, err := w.vpc.c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{instance}},
		{Name: aws.String("interface-type"), Values: []string{"trunk"}}}})
	w.vpc.countOwn("DescribeNetworkInterfaces", err)
	if err != nil || len(out.NetworkInterfaces) != 1 {
		t.Fatalf("trunk of %s: %v, %+v", instance, err, out)
	}
	return *out.NetworkInterfaces[0].NetworkInterfaceId
}

func (w *world) describeENI(t testing.TB, id string) types.NetworkInterface {
	t.Helper()
	out, err := w.vpc.c.DescribeNetworkInterfaces(t.Context(), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	w.vpc.countOwn("DescribeNetworkInterfaces", err)
	if err != nil {
		t.Fatalf("describing %s: %v", id, err)
	}
	return out.NetworkInterfaces[0]
}

func (w *world) associationOf(t testing.TB, branch string) types.TrunkInterfaceAssociation {
	t.Helper()
	out, err := w.vpc.c.DescribeTrunkInterfaceAssociations(t.Context(), &ec2.DescribeTrunkInterfaceAssociationsInput{
		Filters: []types.Filter{{Name: aws.String("trunk-interface-association.branch-interface-id"), Values: []string{branch}}}})
	w.vpc.countOwn("DescribeTrunkInterfaceAssociations", err)
	if err != nil || len(out.InterfaceAssociations) != 1 {
		t.Fatalf("association of %s: %v, %+v", branch, err, out)
	}
	return out.InterfaceAssociations[0]
}

// expectPermission checks that the controller granted its account INSTANCE-ATTACH on eni, as
// AWS's controller does before it attaches a trunk or associates a branch.
func (w *world) expectPermission(t testing.TB, eni string) {
	t.Helper()
	out, err := w.vpc.c.DescribeNetworkInterfacePermissions(t.Context(), &ec2.DescribeNetworkInterfacePermissionsInput{
		Filters: []types.Filter{{Name: aws.String("network-interface-permission.network-interface-id"), Values: []string{eni}}}})
	w.vpc.countOwn("DescribeNetworkInterfacePermissions", err)
	if err != nil || len(out.NetworkInterfacePermissions) != 1 ||
		out.NetworkInterfacePermissions[0].Permission != types.InterfacePermissionTypeInstanceAttach {
		t.Fatalf("permissions of %s: %v, %+v", eni, err, out)
	}
}

// waitAnnotated waits until the pod carries one branch ENI in its pod-eni annotation.
func (w *world) waitAnnotated(t testing.TB, ns, name string) v1beta1.PodENI {
	t.Helper()
	var got v1beta1.PodENI
	w.eventually(t, 2*time.Minute, func(ctx context.Context) (err error) {
		got, err = annotatedENI(ctx, w.c, ns, name)
		return err
	})
	return got
}

// annotatedENI reads the one branch ENI of the pod's pod-eni annotation.
func annotatedENI(ctx context.Context, c client.Client, ns, name string) (v1beta1.PodENI, error) {
	p := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, p); err != nil {
		return v1beta1.PodENI{}, err
	}
	return podENI(p)
}

// podENI is the one branch ENI of a pod's pod-eni annotation.
func podENI(p *corev1.Pod) (v1beta1.PodENI, error) {
	v, ok := p.Annotations[v1beta1.AnnotationPodENI]
	if !ok {
		return v1beta1.PodENI{}, fmt.Errorf("pod %s/%s (node %q) has no %s annotation", p.Namespace, p.Name, p.Spec.NodeName, v1beta1.AnnotationPodENI)
	}
	enis, err := v1beta1.ParsePodENIs(v)
	if err != nil {
		return v1beta1.PodENI{}, fmt.Errorf("annotation %q: %w", v, err)
	}
	if len(enis) != 1 {
		return v1beta1.PodENI{}, fmt.Errorf("annotation %q names %d ENIs, want 1", v, len(enis))
	}
	return enis[0], nil
}
