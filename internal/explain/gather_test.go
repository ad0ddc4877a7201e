package explain_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	awsec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	cloudec2 "github.com/podsg/podsg/internal/cloud/ec2"
	"github.com/podsg/podsg/internal/controller/controllertest"
	"github.com/podsg/podsg/internal/explain"
	"github.com/podsg/podsg/internal/podidentity"
	"github.com/podsg/podsg/internal/policy"
	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/vpctest"
	"github.com/podsg/podsg/internal/webhook/pod"
)

// TestExplain runs podsg's real pod webhooks on a real apiserver and a local VPC behind the
// real EC2 client, plays the controller's part for two pods (a branch ENI, the annotation,
// the controller's events), and checks what explain says about four pods: selected by their
// ServiceAccount and allocated (then with its groups changed in EC2), selected by their
// labels and stuck, selected by nothing, and missed by admission because the policy came later.
func TestExplain(t *testing.T) {
	env := testenv.Start(t, testenv.Options{Webhooks: envtest.WebhookInstallOptions{Paths: []string{"../../config/webhook"}}})
	mgr := controllertest.NewManager(t, env)
	if err := pod.Setup(mgr, controllertest.ControllerUsername, podidentity.Options{Region: "us-west-2"}); err != nil {
		t.Fatal(err)
	}
	controllertest.Start(t, mgr)
	asController, rec := mgr.GetClient(), mgr.GetEventRecorder(v1beta1.ReportingController)
	c := env.Client
	ctx := t.Context()

	vpc := vpctest.Start(t, vpctest.Options{})
	node := vpc.NewNode(t, "m5.large")
	gA, gB, gC := vpc.NewGroup(t, node.VPC, "a"), vpc.NewGroup(t, node.VPC, "b"), vpc.NewGroup(t, node.VPC, "c")
	ec2 := vpc.CloudClient(t, nil)

	ns := controllertest.Namespace(t, c, "explain")
	controllertest.Create(t, c, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{v1beta1.LabelHasTrunkAttached: "true"}},
		Spec:       corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + node.Instance},
	})
	newPod := func(name, sa string, labels map[string]string) *corev1.Pod {
		p := controllertest.Pod(ns, name, sa)
		p.Labels, p.Spec.NodeName = labels, "node-1"
		return p
	}

	// The webhooks fail closed: a pod is created once they answer. No policy exists yet.
	early := newPod("early", "", map[string]string{"app": "web"})
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		if err := c.Create(ctx, early.DeepCopy()); !apierrors.IsAlreadyExists(err) {
			return err
		}
		return nil
	})
	if err := c.Get(ctx, client.ObjectKeyFromObject(early), early); err != nil {
		t.Fatal(err)
	}
	// Creation times have a resolution of one second; the policy must be visibly younger.
	time.Sleep(time.Until(early.CreationTimestamp.Add(time.Second)))

	web := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: v1beta1.SecurityGroupPolicySpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			SecurityGroups: v1beta1.GroupIDs{Groups: []string{gC}}}}
	seed := controllertest.SeedPolicy(ns)
	seed.Spec.SecurityGroups.Groups = []string{gA, gB}
	controllertest.Create(t, c, web, controllertest.SeedServiceAccount(ns), seed)
	// The webhook's cache sees the policies in creation order: once a pod gets the later one's
	// groups, it knows both.
	controllertest.WaitForWebhook(t, c, ns)

	bySA := newPod("by-sa", "rds-db-access", nil)
	byLabel := newPod("by-label", "", map[string]string{"app": "web"})
	neither := newPod("neither", "", map[string]string{"app": "other"})
	controllertest.Create(t, c, bySA, byLabel, neither)
	withRole, beforeRole := identityPods(t, c, ns, newPod)

	// The controller's part for by-sa: a branch ENI with the admitted groups on the node's
	// trunk, the annotation, the events.
	eni := createBranch(t, ec2, node, bySA, gA, gB)
	assoc, err := ec2.AssociateTrunkInterface(ctx, node.Trunk, eni.ID, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	value, err := v1beta1.MarshalPodENIs([]v1beta1.PodENI{{ENIID: eni.ID, IfAddress: eni.MAC, PrivateIP: eni.PrivateIP,
		VLANID: 1, SubnetCIDR: "10.0.0.0/16", AssociationID: assoc.ID}})
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(bySA.DeepCopy())
	bySA.Annotations[v1beta1.AnnotationPodENI] = value
	if err := asController.Patch(ctx, bySA, patch); err != nil {
		t.Fatalf("annotating as the controller: %v", err)
	}
	rec.Eventf(bySA, nil, corev1.EventTypeNormal, v1beta1.ReasonSecurityGroupRequested, "AllocateBranch",
		"Pod will get the following Security Groups [%s %s]", gA, gB)
	rec.Eventf(bySA, nil, corev1.EventTypeNormal, v1beta1.ReasonResourceAllocated, "AllocateBranch", "Allocated %s to the pod", value)
	// by-label is stuck: its branch exists but allocation fails before the annotation.
	stuck := createBranch(t, ec2, node, byLabel, gC)
	rec.Eventf(byLabel, nil, corev1.EventTypeWarning, v1beta1.ReasonAllocationFailed, "AllocateBranch", "associating branch %s: quota", stuck.ID)

	explainPod := func(ctx context.Context, name string, withEC2 bool) (string, error) {
		var e explain.EC2
		if withEC2 {
			e = ec2
		}
		r, err := explain.Gather(ctx, c, e, types.NamespacedName{Namespace: ns, Name: name})
		if err != nil {
			return "", err
		}
		return explain.Render(r), nil
	}
	// expect polls until explain's output has every line: the events arrive asynchronously.
	expect := func(t *testing.T, name string, withEC2 bool, lines ...string) {
		t.Helper()
		var mismatch error
		testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
			out, err := explainPod(ctx, name, withEC2)
			if err != nil {
				if ctx.Err() != nil && mismatch != nil {
					return mismatch // the poll timed out mid-call: the last output says more
				}
				return err
			}
			for _, l := range lines {
				if !strings.Contains(out, l) {
					mismatch = fmt.Errorf("output lacks %q:\n%s", l, out)
					return mismatch
				}
			}
			return nil
		})
	}
	webhookLine := "  webhook:          mutating-webhook-configuration/mpod.podsg.io: sees pods of namespace explain"

	t.Run("selected by its ServiceAccount, allocated", func(t *testing.T) {
		expect(t, "by-sa", true,
			"Pod explain/by-sa\n  node:             node-1 (trunk attached, vpc.amazonaws.com/pod-eni allocatable: none)",
			"  service account:  rds-db-access (labels: role=backend)",
			`  branch ENI:       requested: container "app" requests vpc.amazonaws.com/pod-eni`,
			fmt.Sprintf("  admitted groups:  [%s %s]", gA, gB),
			webhookLine,
			fmt.Sprintf("  my-sg-policy: SELECTS the pod; groups [%s %s]\n    podSelector             not set\n"+
				"    serviceAccountSelector  role=backend: matches ServiceAccount rds-db-access's labels (role=backend)", gA, gB),
			"    podSelector             app=web: does not match the pod's labels (none); unmet: app=web",
			fmt.Sprintf("  groups the pod should get: [%s %s], the union of my-sg-policy", gA, gB),
			fmt.Sprintf("  %s  IP %s  VLAN 1  subnet 10.0.0.0/16  MAC %s  association %s", eni.ID, eni.PrivateIP, eni.MAC, assoc.ID),
			"Normal  SecurityGroupRequested: Pod will get the following Security Groups",
			"Normal  ResourceAllocated: Allocated",
			fmt.Sprintf("  trunk: %s on instance %s", node.Trunk, node.Instance),
			fmt.Sprintf("  branch %s: type branch", eni.ID),
			"(as admitted)",
			fmt.Sprintf("    association: %s, VLAN 1 on trunk %s", assoc.ID, node.Trunk),
			fmt.Sprintf("  - The pod has branch ENI %s (VLAN 1, %s)", eni.ID, eni.PrivateIP),
			fmt.Sprintf("  - EC2 confirms: %s carries exactly the admitted groups", eni.ID))
	})
	t.Run("groups changed in EC2", func(t *testing.T) {
		if _, err := vpc.Client.ModifyNetworkInterfaceAttribute(ctx, &awsec2.ModifyNetworkInterfaceAttributeInput{
			NetworkInterfaceId: aws.String(eni.ID), Groups: []string{gC}}); err != nil {
			t.Fatal(err)
		}
		expect(t, "by-sa", true, fmt.Sprintf("  ! Drift: in EC2, %s carries [%s], but the pod was admitted with [%s %s]", eni.ID, gC, gA, gB))
	})
	t.Run("selected by its labels, allocation stuck", func(t *testing.T) {
		expect(t, "by-label", true,
			"  service account:  default (does not exist: no labels for a serviceAccountSelector to match)",
			fmt.Sprintf("  admitted groups:  [%s]", gC),
			"    podSelector             app=web: matches the pod's labels (app=web)",
			"    serviceAccountSelector  role=backend: does not match ServiceAccount default (does not exist); unmet: role=backend",
			"  absent: no branch ENI allocated",
			"Warning BranchAllocationFailed: associating branch",
			fmt.Sprintf("    association: none on trunk %s", node.Trunk),
			"  ! podsg-controller has not annotated the pod yet: no branch ENI is allocated. Its last warning: BranchAllocationFailed: associating branch",
			fmt.Sprintf("  ! Branch ENI %s was created for this pod but is not in its annotation", stuck.ID))
	})
	t.Run("selected by nothing", func(t *testing.T) {
		expect(t, "neither", false,
			"  branch ENI:       not requested: no container requests vpc.amazonaws.com/pod-eni",
			"  groups the pod should get: none, no policy selects it",
			"EC2\n  not checked: pass --ec2",
			"  - No SecurityGroupPolicy in namespace explain selects this pod")
	})
	t.Run("created before its policy", func(t *testing.T) {
		expect(t, "early", true,
			"  web: SELECTS the pod",
			"  branch ENI:       not requested",
			"  branch ENIs: none for this pod",
			"  ! Policy web selects this pod now, but the pod did not request a branch ENI when it was created",
			"  ! Likely cause: policy web was created after the pod.")
	})
	t.Run("given its ServiceAccount's IAM role", func(t *testing.T) {
		expect(t, withRole.Name, false,
			"IAM role (IRSA, ServiceAccount iam-app)\n  role:             "+iamRole+" (eks.amazonaws.com/role-arn",
			`  asks for:         a token for audience "sts.amazonaws.com", 86400 s; AWS_STS_REGIONAL_ENDPOINTS=regional`,
			"  webhook:          mutating-webhook-configuration/mpodidentity.podsg.io: sees pods of namespace explain",
			`  token volume:     aws-iam-token: projected ServiceAccount token, audience "sts.amazonaws.com", 86400 s`,
			"    app: role "+iamRole+", token file /var/run/secrets/eks.amazonaws.com/serviceaccount/token, aws-iam-token mounted",
			"    sidecar: skipped (eks.amazonaws.com/skip-containers)",
			"  - The pod has IAM role "+iamRole+" (ServiceAccount iam-app): container app assumes it with sts:AssumeRoleWithWebIdentity, "+
				`with a projected token for audience "sts.amazonaws.com".`,
			"  - Container sidecar, named in eks.amazonaws.com/skip-containers, has no role")
	})
	t.Run("created before its ServiceAccount named the role", func(t *testing.T) {
		expect(t, beforeRole.Name, false,
			"  role:             "+iamRole+" (eks.amazonaws.com/role-arn",
			"  token volume:     none (aws-iam-token)",
			"    app: no AWS_ROLE_ARN",
			"  ! ServiceAccount late-role names IAM role "+iamRole+", but the pod has no role",
			// This apiserver records no managedFields, which would date the annotation
			// (annotationManager, unit-tested): the cause is the general one.
			"  ! Likely cause: the annotation was added after the pod was created")
	})
	t.Run("DNS and probes of a branch pod", func(t *testing.T) {
		checkTraffic(t, trafficWorld{c: c, asController: asController, vpc: vpc, ec2: ec2, node: node, ns: ns, newPod: newPod}, expect, explainPod)
	})
	t.Run("no such pod", func(t *testing.T) {
		if _, err := explainPod(ctx, "nope", false); err == nil || !strings.Contains(err.Error(), "getting pod explain/nope") {
			t.Fatalf("explaining a missing pod: err = %v", err)
		}
	})
}

const iamRole = "arn:aws:iam::111122223333:role/rds-db-access"

// identityPods makes two pods of IAM role ServiceAccounts: one given its ServiceAccount's role
// (its sidecar skipped), one created before its ServiceAccount was annotated.
func identityPods(t *testing.T, c client.Client, ns string, newPod func(name, sa string, labels map[string]string) *corev1.Pod) (withRole, beforeRole *corev1.Pod) {
	t.Helper()
	ctx := t.Context()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "iam-app",
		Annotations: map[string]string{podidentity.AnnotationRoleARN: iamRole}}}
	late := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late-role"}}
	controllertest.Create(t, c, sa, late)
	// The webhook reads ServiceAccounts from its cache: create until the role is given.
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		withRole = newPod("with-role", "iam-app", nil)
		withRole.Annotations = map[string]string{podidentity.AnnotationSkipContainers: "sidecar"}
		withRole.Spec.Containers = append(withRole.Spec.Containers, corev1.Container{Name: "sidecar", Image: withRole.Spec.Containers[0].Image})
		if err := c.Create(ctx, withRole); err != nil {
			return err
		}
		if len(withRole.Spec.Volumes) == 0 {
			_ = c.Delete(ctx, withRole)
			return fmt.Errorf("the webhook has not seen ServiceAccount iam-app yet")
		}
		return nil
	})
	beforeRole = newPod("before-role", "late-role", nil)
	controllertest.Create(t, c, beforeRole)
	patch := client.RawPatch("application/merge-patch+json", fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, podidentity.AnnotationRoleARN, iamRole))
	if err := c.Patch(ctx, late, patch); err != nil {
		t.Fatal(err)
	}
	return withRole, beforeRole
}

// createBranch makes a branch ENI for a pod as the controller does: tagged with its UID.
func createBranch(t *testing.T, ec2 *cloudec2.Client, node vpctest.Node, p *corev1.Pod, groups ...string) cloud.NetworkInterface {
	t.Helper()
	eni, err := ec2.CreateNetworkInterface(t.Context(), cloud.CreateNetworkInterfaceInput{SubnetID: node.Subnet, SecurityGroups: groups,
		Type: cloud.InterfaceTypeBranch, Tags: map[string]string{cloud.TagPodUID: string(p.UID), cloud.TagTrunkENI: node.Trunk}})
	if err != nil {
		t.Fatal(err)
	}
	return eni
}

// trafficWorld is what checkTraffic needs of TestExplain's world.
type trafficWorld struct {
	c, asController client.Client
	vpc             *vpctest.Env
	ec2             *cloudec2.Client
	node            vpctest.Node
	ns              string
	newPod          func(name, sa string, labels map[string]string) *corev1.Pod
}

// checkTraffic gives the cluster a CoreDNS pod behind kube-system/kube-dns on the node's
// address and a branch pod with a readiness probe, and checks that explain warns, from the
// rules in EC2, until the node's group admits DNS from the pod's group and the pod's group
// admits the probe from the node's.
func checkTraffic(t *testing.T, w trafficWorld, expect func(*testing.T, string, bool, ...string),
	explainPod func(context.Context, string, bool) (string, error)) {
	ctx := t.Context()
	inst, err := w.ec2.DescribeInstance(ctx, w.node.Instance)
	if err != nil {
		t.Fatal(err)
	}
	nodeSG := inst.SecurityGroups[0]
	dnsLabels := map[string]string{"k8s-app": "kube-dns"}
	controllertest.Create(t, w.c, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-dns"},
		Spec: corev1.ServiceSpec{Selector: dnsLabels, Ports: []corev1.ServicePort{{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP}}}})
	coredns := controllertest.Pod("kube-system", "coredns-1", "")
	coredns.Labels, coredns.Spec.NodeName = dnsLabels, "node-1"
	controllertest.Create(t, w.c, coredns)
	coredns.Status.Phase, coredns.Status.PodIP = corev1.PodRunning, inst.PrivateIP
	if err := w.c.Status().Update(ctx, coredns); err != nil {
		t.Fatal(err)
	}

	probed := w.newPod("probed", "rds-db-access", nil)
	probed.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstr.FromInt32(8080)}}}
	controllertest.Create(t, w.c, probed)
	groups := policy.SplitGroups(probed.Annotations[v1beta1.AnnotationSecurityGroups])
	eni := createBranch(t, w.ec2, w.node, probed, groups...)
	value, err := v1beta1.MarshalPodENIs([]v1beta1.PodENI{{ENIID: eni.ID, IfAddress: eni.MAC, PrivateIP: eni.PrivateIP,
		VLANID: 2, SubnetCIDR: "10.0.0.0/16", AssociationID: "trunk-assoc-0000000000000000f"}})
	if err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(probed.DeepCopy())
	probed.Annotations[v1beta1.AnnotationPodENI] = value
	if err := w.asController.Patch(ctx, probed, patch); err != nil {
		t.Fatal(err)
	}

	dnsBlocked := fmt.Sprintf("  ! DNS is blocked from the pod (%s on %s) to CoreDNS pod kube-system/coredns-1 (%s on %s): its groups [%s] admit no udp 53, tcp 53 from the pod",
		eni.PrivateIP, eni.ID, inst.PrivateIP, inst.NetworkInterfaces[0].ID, nodeSG)
	probeBlocked := fmt.Sprintf("  ! The readiness probe of container app (httpGet, tcp 8080) comes from the kubelet at the node's address %s (%s): "+
		"the pod's groups %s admit no tcp 8080 from the node, so the probe fails", inst.PrivateIP, inst.NetworkInterfaces[0].ID, "["+strings.Join(eni.SecurityGroups, " ")+"]")
	expect(t, "probed", true, dnsBlocked, probeBlocked)

	// The advice of the seed: DNS to and from the cluster (here: the node's) group, and the probe
	// port from it.
	authorize := func(group, peer, proto string, port int32) {
		_, err := w.vpc.Client.AuthorizeSecurityGroupIngress(ctx, &awsec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(group),
			IpPermissions: []awsec2types.IpPermission{{IpProtocol: aws.String(proto), FromPort: aws.Int32(port), ToPort: aws.Int32(port),
				UserIdGroupPairs: []awsec2types.UserIdGroupPair{{GroupId: aws.String(peer)}}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	authorize(nodeSG, groups[0], "udp", 53)
	authorize(nodeSG, groups[0], "tcp", 53)
	authorize(groups[0], nodeSG, "tcp", 8080)
	out, err := explainPod(ctx, "probed", true)
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"DNS is blocked", "probe of container"} {
		if strings.Contains(out, gone) {
			t.Errorf("with the rules, explain still says %q:\n%s", gone, out)
		}
	}
}
