package trunk

import (
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/api/v1beta1"
	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
)

// TrunkDescription marks trunk ENIs, as AWS's controller does.
const TrunkDescription = "aws-k8s-trunk-eni"

// ensureTrunk creates, attaches or adopts the node's trunk and records it with its branches.
// It returns false without error when the node can never get a trunk (reported in an event).
func (c *Controller) ensureTrunk(ctx context.Context, n *corev1.Node) (bool, error) {
	log := logf.FromContext(ctx)
	instanceID, err := cloud.InstanceID(n.Spec.ProviderID)
	if err != nil {
		c.recorder.Eventf(n, nil, corev1.EventTypeWarning, v1beta1.ReasonUnsupported, "InitTrunk", "%v", err)
		return false, nil
	}
	entry, use := c.startupInstance(ctx, n.Name, instanceID)
	inst := entry.inst
	switch use {
	case putOffUntil:
		return false, nil // put off until the start-up read reaches it; sent to Options.Again then
	case readWanted:
		// A pod waits on this node: its reads go before the start-up batch's in the budget.
		ctx = cloud.WithPurpose(ctx, cloud.PurposePod)
	}
	if use != fromBatch {
		if inst, err = c.ec2.DescribeInstance(ctx, instanceID); err != nil {
			return false, fmt.Errorf("describing instance %s: %w", instanceID, err)
		}
	}
	limit, known := c.limits.Branches(inst.Type)
	if limit == 0 {
		why := "does not support ENI trunking"
		if !known {
			why = "is not in podsg's instance limits table (see --instance-limits-file)"
		}
		c.recorder.Eventf(n, nil, corev1.EventTypeWarning, v1beta1.ReasonUnsupported, "InitTrunk",
			"instance type %s %s; pods with security groups cannot run on this node", inst.Type, why)
		return false, nil
	}
	subnet, err := c.subnet(ctx, inst.SubnetID)
	if err != nil {
		return false, err
	}
	eni, created, err := c.trunkENI(ctx, n, inst)
	if err != nil {
		c.recorder.Eventf(n, nil, corev1.EventTypeWarning, v1beta1.ReasonTrunkCreationFailed, "InitTrunk",
			"creating the trunk ENI: %v", err)
		return false, err
	}
	t := inventory.Trunk{Node: n.Name, InstanceID: inst.ID, ID: eni.ID, AttachmentID: eni.AttachmentID,
		SubnetID: inst.SubnetID, SubnetCIDR: subnet.CIDR, Limit: limit}
	var batched *startupEntry
	if use == fromBatch {
		batched = &entry
	}
	branches, foreign, err := c.existingBranches(ctx, t, batched)
	if err != nil {
		return false, err
	}
	for _, b := range c.store.PutTrunk(t, branches, foreign) {
		log.Info("unassociated warm branch not adopted: the trunk is full; the sweeper deletes it", "node", n.Name, "eni", b.ENIID)
	}
	log.Info("trunk ready", "node", n.Name, "trunk", eni.ID, "limit", limit, "adoptedBranches", len(branches))
	if created {
		// Not for a trunk adopted after a restart: nothing changed for the node, and an event
		// per node of the fleet, each a write to the apiserver, slowed a 1,700-node restart.
		c.recorder.Eventf(n, nil, corev1.EventTypeNormal, v1beta1.ReasonTrunkInitiated, "InitTrunk",
			"trunk ENI %s attached; %d branch ENIs available", eni.ID, limit)
	}
	return true, nil
}

// subnet returns a subnet, read once per controller: a subnet's CIDR never changes, and a
// fleet's nodes share a few subnets.
func (c *Controller) subnet(ctx context.Context, id string) (cloud.Subnet, error) {
	if s, ok := c.subnets.Load(id); ok {
		return s.(cloud.Subnet), nil
	}
	s, err := c.ec2.DescribeSubnet(ctx, id)
	if err != nil {
		return cloud.Subnet{}, fmt.Errorf("describing subnet %s: %w", id, err)
	}
	c.subnets.Store(id, s)
	return s, nil
}

// trunkENI returns the attached trunk of the instance, attaching one podsg created before (a
// crash between create and attach) or creating one. The ClientToken derived from the node's
// UID makes a retried create return the same ENI instead of leaking a second one. created says
// it attached one now.
func (c *Controller) trunkENI(ctx context.Context, n *corev1.Node, inst cloud.Instance) (eni cloud.NetworkInterface, created bool, err error) {
	for _, e := range inst.NetworkInterfaces {
		if e.Type == cloud.InterfaceTypeTrunk {
			return e, false, nil
		}
	}
	eni, err = c.ec2.CreateNetworkInterface(ctx, cloud.CreateNetworkInterfaceInput{
		SubnetID: inst.SubnetID, Description: TrunkDescription, SecurityGroups: inst.SecurityGroups,
		Type: cloud.InterfaceTypeTrunk, ClientToken: "podsg-trunk-" + string(n.UID),
		Tags: map[string]string{cloud.TagCluster: c.opts.ClusterName, cloud.TagNode: n.Name, cloud.TagNodeUID: string(n.UID)},
	})
	if err != nil {
		return cloud.NetworkInterface{}, false, fmt.Errorf("creating trunk ENI: %w", err)
	}
	used := make([]int, 0, len(inst.NetworkInterfaces))
	for _, e := range inst.NetworkInterfaces {
		used = append(used, e.DeviceIndex)
	}
	index := 1
	for slices.Contains(used, index) {
		index++
	}
	if eni.AttachmentID, err = c.ec2.AttachNetworkInterface(ctx, eni.ID, inst.ID, index); err != nil {
		return cloud.NetworkInterface{}, false, fmt.Errorf("attaching trunk ENI %s at device index %d: %w", eni.ID, index, err)
	}
	eni.InstanceID, eni.DeviceIndex = inst.ID, index
	return eni, true, nil
}

// existingBranches rebuilds a trunk's branches from its associations, the branch ENIs' tags
// and groups, and the pod-eni annotations of the node's pods. A branch belongs to the live pod
// annotated with it, or else, before any annotation, to the live pod its tags name (created
// for it, not yet annotated). Any other starts a fresh cool-down, then is parked (or deleted
// without reuse): we cannot know how long ago its last pod stopped, and reusing its address
// too early is what the cool-down prevents. Associations of ENIs podsg did not tag are left
// alone; their VLANs are never reused. A branch ENI made for the trunk's warm pool and not
// associated (a crash between create and associate) is returned as warming, to be associated.
// batched is the node's entry of the start-up read, if it came from it: the trunk's branches
// then do too, unless the trunk was created since (it read none).
func (c *Controller) existingBranches(ctx context.Context, t inventory.Trunk, batched *startupEntry) ([]inventory.Branch, []int, error) {
	var assocs []cloud.TrunkAssociation
	var enis []cloud.NetworkInterface
	if batched != nil && slices.ContainsFunc(batched.inst.NetworkInterfaces, func(e cloud.NetworkInterface) bool { return e.ID == t.ID }) {
		assocs, enis = batched.assocs, batched.branches
	} else {
		var err error
		if assocs, err = c.ec2.DescribeTrunkInterfaceAssociations(ctx, t.ID); err != nil {
			return nil, nil, fmt.Errorf("describing associations of trunk %s: %w", t.ID, err)
		}
		enis, err = c.ec2.DescribeNetworkInterfaces(ctx, cloud.NetworkInterfaceFilter{
			Tags: map[string]string{cloud.TagCluster: c.opts.ClusterName, cloud.TagTrunkENI: t.ID}})
		if err != nil {
			return nil, nil, fmt.Errorf("describing branch ENIs of trunk %s: %w", t.ID, err)
		}
	}
	owners, err := annotatedOn(ctx, c.kube, t.Node)
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]cloud.NetworkInterface{}
	for _, e := range enis {
		byID[e.ID] = e
	}
	var branches []inventory.Branch
	var foreign []int
	for _, a := range assocs {
		e, ours := byID[a.BranchID]
		if !ours {
			foreign = append(foreign, a.VLAN)
			continue
		}
		b := inventory.Branch{VLAN: a.VLAN, ENIID: e.ID, MAC: e.MAC, PrivateIP: e.PrivateIP, AssociationID: a.ID,
			Groups: e.SecurityGroups}
		owner, err := c.owner(ctx, e, owners)
		if err != nil {
			return nil, nil, err
		}
		if owner != nil {
			b.PodUID, b.Namespace, b.Name = owner.UID, owner.Namespace, owner.Name
		} else {
			b.ReleaseAt = c.clock.Now().Add(c.opts.Cooldown)
		}
		branches = append(branches, b)
	}
	return append(branches, unassociatedWarm(enis, assocs)...), foreign, nil
}

// unassociatedWarm returns the trunk's branch ENIs made for a warm pool (tagged with the trunk
// and no pod) that no association names, as warming branches. Their tags were written with
// the create, so they are found even when the create's response was lost: adopting them is
// what lets a restarted warmer resume instead of creating the same branch again, since the
// ClientToken of a warm create is its process's (one per slot and groups would not do: EC2
// binds a token to its ENI even after the ENI is deleted, so a slot could never be refilled).
// A branch disassociated before a crash (its idle TTL was over, its cool-down long past) is
// adopted too: once associated it is idle, and the releaser frees it again after its idle TTL
// if it is above its warm target.
func unassociatedWarm(enis []cloud.NetworkInterface, assocs []cloud.TrunkAssociation) []inventory.Branch {
	associated := make(map[string]bool, len(assocs))
	for _, a := range assocs {
		associated[a.BranchID] = true
	}
	var out []inventory.Branch
	for _, e := range enis {
		if e.Type != cloud.InterfaceTypeBranch || associated[e.ID] || e.Tags[cloud.TagPodName] != "" {
			continue
		}
		out = append(out, inventory.Branch{ENIID: e.ID, MAC: e.MAC, PrivateIP: e.PrivateIP, Groups: e.SecurityGroups, Warm: true})
	}
	return out
}

// owner returns the live pod a branch belongs to, nil if none: the pod annotated with it, or
// the one its tags name while that pod has no other branch.
func (c *Controller) owner(ctx context.Context, e cloud.NetworkInterface, annotated map[string]*corev1.Pod) (*corev1.Pod, error) {
	if p, ok := annotated[e.ID]; ok {
		return p, nil
	}
	name := e.Tags[cloud.TagPodName]
	if name == "" {
		return nil, nil // made for a warm pool, never annotated
	}
	pod := &corev1.Pod{}
	if err := c.kube.Get(ctx, types.NamespacedName{Namespace: e.Tags[cloud.TagNamespace], Name: name}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("getting pod %s/%s: %w", e.Tags[cloud.TagNamespace], name, err)
	}
	if pod.UID != types.UID(e.Tags[cloud.TagPodUID]) || !TagOwner(pod, e.ID) {
		return nil, nil
	}
	return pod, nil
}
