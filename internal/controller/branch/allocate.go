package branch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
	"github.com/podsg/podsg/internal/policy"
)

// BranchDescription marks branch ENIs, as AWS's controller does.
const BranchDescription = "aws-k8s-branch-eni"

// allocate walks a pod through reserve → create → associate → annotate, or, when its node has
// an idle branch, reserve → (change its groups) → annotate. Each step is recorded in the store,
// and the EC2 steps carry pod-derived ClientTokens, so a retry after any failure (or a lost
// response) resumes with the same ENI: a pod never gets a second one.
func (c *Controller) allocate(ctx context.Context, pod *corev1.Pod) (reconcile.Result, error) {
	log := logf.FromContext(ctx)
	ctx = cloud.WithPurpose(ctx, cloud.PurposePod)
	// Only what admission resolved counts. Falling back to the node's groups, as AWS does,
	// would silently open the pod to whatever the node may reach.
	groups := policy.SplitGroups(pod.Annotations[v1beta1.AnnotationSecurityGroups])
	if len(groups) == 0 {
		c.recorder.Eventf(pod, nil, corev1.EventTypeWarning, v1beta1.ReasonNoSecurityGroups, "AllocateBranch",
			"pod requests %s but has no %s annotation from podsg's webhook; recreate the pod so admission resolves its groups",
			v1beta1.ResourcePodENI, v1beta1.AnnotationSecurityGroups)
		return reconcile.Result{}, nil
	}
	t, ok := c.store.Trunk(pod.Spec.NodeName)
	if !ok {
		log.V(1).Info("waiting for the node's trunk", "node", pod.Spec.NodeName)
		c.wait(podKey(pod), pod.Spec.NodeName)
		if c.opts.TrunkWanted != nil {
			c.opts.TrunkWanted(pod.Spec.NodeName)
		}
		return reconcile.Result{RequeueAfter: c.opts.TrunkWait}, nil
	}
	c.wait(podKey(pod), "")
	b, src, err := c.store.Reserve(t.Node, pod.UID, pod.Namespace, pod.Name, groups)
	if err != nil {
		if errors.Is(err, inventory.ErrAtCapacity) {
			c.recorder.Eventf(pod, nil, corev1.EventTypeWarning, v1beta1.ReasonAllocationFailed, "AllocateBranch",
				"node %s has no free branch ENI (all in use or cooling down); retrying", t.Node)
		}
		return reconcile.Result{}, fmt.Errorf("reserving a VLAN: %w", err)
	}
	// The finalizer goes on before any EC2 effect. A branch ready as it is (idle, of the pod's
	// groups) needs none: the finalizer goes on with the annotation, one write for the pod.
	ready := b.ENIID != "" && b.AssociationID != "" && inventory.SameGroups(b.Groups, groups)
	if !ready {
		if err := c.addFinalizer(ctx, pod); err != nil {
			return reconcile.Result{}, err
		}
	}
	if src != inventory.SourceHeld {
		c.recorder.Eventf(pod, nil, corev1.EventTypeNormal, v1beta1.ReasonSecurityGroupRequested, "AllocateBranch",
			"Pod will get the following Security Groups [%s]", strings.Join(groups, " "))
	}
	if b, err = c.prepare(ctx, pod, t, b, groups); err != nil {
		return reconcile.Result{}, c.report(pod, err)
	}
	return reconcile.Result{}, c.annotate(ctx, pod, t, b)
}

// prepare makes the pod's reserved branch what the pod needs: an ENI carrying its groups,
// associated with its trunk. It makes only the EC2 calls still missing: none for an idle
// branch of the pod's groups.
func (c *Controller) prepare(ctx context.Context, pod *corev1.Pod, t inventory.Trunk, b inventory.Branch, groups []string) (inventory.Branch, error) {
	var err error
	switch {
	case b.ENIID == "":
		if b, err = c.createENI(ctx, pod, t, b, groups); err != nil {
			return b, err
		}
	case !inventory.SameGroups(b.Groups, groups):
		// A parked or warm branch of other groups: one call instead of delete, create, associate.
		if err := c.setGroups(ctx, t.Node, pod.UID, b.ENIID, groups); err != nil {
			return b, err
		}
	}
	if b.AssociationID == "" {
		a, err := c.ec2.AssociateTrunkInterface(ctx, t.ID, b.ENIID, b.VLAN, fmt.Sprintf("podsg-assoc-%s-%d", pod.UID, b.VLAN))
		if err != nil {
			return b, fmt.Errorf("associating branch %s with trunk %s: %w", b.ENIID, t.ID, err)
		}
		b.AssociationID = a.ID
		c.store.Update(t.Node, pod.UID, func(s *inventory.Branch) { s.AssociationID = a.ID })
	}
	return b, nil
}

// setGroups changes the groups of the pod's branch. The store forgets them first: if the call
// fails, or its response is lost, EC2 may hold either set, and a branch of unknown groups is
// never handed out as a match; the next attempt (or the next pod to take it) sets them again.
func (c *Controller) setGroups(ctx context.Context, nodeName string, uid types.UID, eniID string, groups []string) error {
	c.store.Update(nodeName, uid, func(s *inventory.Branch) { s.Groups = nil })
	if err := c.ec2.ModifyNetworkInterfaceGroups(ctx, eniID, groups); err != nil {
		return fmt.Errorf("changing the groups of branch %s to %s: %w", eniID, strings.Join(groups, ","), err)
	}
	c.store.Update(nodeName, uid, func(s *inventory.Branch) { s.Groups = inventory.SortedGroups(groups) })
	return nil
}

func (c *Controller) createENI(ctx context.Context, pod *corev1.Pod, t inventory.Trunk, b inventory.Branch, groups []string) (inventory.Branch, error) {
	eni, err := c.ec2.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{
		SubnetID: t.SubnetID, Description: BranchDescription, SecurityGroups: groups, Type: cloud.InterfaceTypeBranch,
		ClientToken: "podsg-branch-" + string(pod.UID),
		Tags: map[string]string{
			cloud.TagCluster: c.opts.ClusterName, cloud.TagNamespace: pod.Namespace, cloud.TagPodName: pod.Name,
			cloud.TagPodUID: string(pod.UID), cloud.TagNode: t.Node, cloud.TagTrunkENI: t.ID,
		},
	})
	if err != nil {
		// Nothing was created (or, after a lost response, the ClientToken finds it next time),
		// so the VLAN can go back until the retry.
		c.store.Unreserve(t.Node, pod.UID)
		return b, fmt.Errorf("creating branch ENI with groups %s: %w", strings.Join(groups, ","), err)
	}
	b.ENIID, b.MAC, b.PrivateIP, b.Groups = eni.ID, eni.MAC, eni.PrivateIP, inventory.SortedGroups(eni.SecurityGroups)
	c.store.Update(t.Node, pod.UID, func(s *inventory.Branch) {
		s.ENIID, s.MAC, s.PrivateIP, s.Groups = eni.ID, eni.MAC, eni.PrivateIP, b.Groups
	})
	return b, nil
}

// annotate writes the pod-eni annotation, and the finalizer if the pod has none yet, in one
// strategic merge patch (which appends to the finalizers instead of replacing other
// controllers'). The patch carries the pod's UID, so it fails instead of landing on a new pod
// that reused the name.
func (c *Controller) annotate(ctx context.Context, pod *corev1.Pod, t inventory.Trunk, b inventory.Branch) error {
	value, err := v1beta1.MarshalPodENIs([]v1beta1.PodENI{{ENIID: b.ENIID, IfAddress: b.MAC, PrivateIP: b.PrivateIP,
		VLANID: b.VLAN, SubnetCIDR: t.SubnetCIDR, AssociationID: b.AssociationID}})
	if err != nil {
		return err
	}
	meta := map[string]any{"uid": pod.UID, "annotations": map[string]string{v1beta1.AnnotationPodENI: value}}
	if !slices.Contains(pod.Finalizers, Finalizer) {
		meta["finalizers"] = []string{Finalizer}
	}
	patch, err := json.Marshal(map[string]any{"metadata": meta})
	if err != nil {
		return fmt.Errorf("encoding annotation patch: %w", err)
	}
	if err := c.kube.Patch(ctx, pod, client.RawPatch(types.StrategicMergePatchType, patch)); err != nil {
		c.reportAnnotationFailure(pod, err)
		return fmt.Errorf("annotating pod %s: %w", podKey(pod), err)
	}
	if bound := boundAt(pod); !bound.IsZero() {
		allocationSeconds.Observe(c.clock.Since(bound).Seconds())
	}
	source := b.Source
	if source == inventory.SourceHeld {
		source = "unknown" // reserved by a process that is gone: adopted after a restart
	}
	allocations.WithLabelValues(string(source)).Inc()
	c.recorder.Eventf(pod, nil, corev1.EventTypeNormal, v1beta1.ReasonResourceAllocated, "AllocateBranch", "Allocated %s to the pod", value)
	logf.FromContext(ctx).Info("branch ENI allocated", "eni", b.ENIID, "vlan", b.VLAN, "node", t.Node, "source", source)
	return nil
}

// reportAnnotationFailure says why the pod is not annotated. A denial (by the validating
// webhook or by RBAC) is a misconfiguration that retries never cure, so it says what to check:
// a log line per retry is easy to miss, a Warning event on the pod is where users look.
func (c *Controller) reportAnnotationFailure(pod *corev1.Pod, err error) {
	if !apierrors.IsForbidden(err) {
		c.recorder.Eventf(pod, nil, corev1.EventTypeWarning, v1beta1.ReasonAnnotationFailed, "AllocateBranch", "annotating pod: %v", err)
		return
	}
	c.recorder.Eventf(pod, nil, corev1.EventTypeWarning, v1beta1.ReasonAnnotationFailed, "AllocateBranch",
		"podsg-controller, writing as user %q, was denied the %s annotation: %v. Check that its credentials "+
			"authenticate as that user (it is learnt at start unless --controller-username overrides it), that "+
			"every podsg-controller replica runs as the same user, and that its RBAC allows patching pods; retrying with backoff",
		c.opts.Identity, v1beta1.AnnotationPodENI, err)
}

// report turns an EC2 error into a Warning event when the user can act on it, and returns it
// so the pod is retried with its backoff.
func (c *Controller) report(pod *corev1.Pod, err error) error {
	if a := Classify(err); a.Report {
		c.recorder.Eventf(pod, nil, corev1.EventTypeWarning, a.Reason, "AllocateBranch", "%v", err)
	}
	return err
}

func boundAt(pod *corev1.Pod) (t time.Time) {
	for _, cond := range pod.Status.Conditions {
		if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionTrue {
			return cond.LastTransitionTime.Time
		}
	}
	return t
}
