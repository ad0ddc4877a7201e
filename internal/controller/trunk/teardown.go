package trunk

import (
	"context"
	"errors"
	"fmt"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
)

// teardown frees everything of a deleted node: branches are disassociated and deleted without
// cool-down (no pod can run there any more), then the trunk is detached and deleted. Each freed
// ENI leaves the store at once, so a retry after a failure resumes where this one stopped.
func (c *Controller) teardown(ctx context.Context, nodeName string) error {
	t, ok := c.store.Trunk(nodeName)
	if !ok {
		return nil
	}
	log := logf.FromContext(ctx).WithValues("node", nodeName, "trunk", t.ID)
	var errs []error
	for _, b := range c.store.Branches(nodeName) {
		if err := DeleteBranch(ctx, c.ec2, b); err != nil {
			errs = append(errs, err)
			continue
		}
		c.store.Drop(nodeName, b)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("freeing branch ENIs of deleted node %s: %w", nodeName, err)
	}
	if t.AttachmentID != "" {
		if err := cloud.IgnoreNotFound(c.ec2.DetachNetworkInterface(ctx, t.AttachmentID, true)); err != nil {
			return fmt.Errorf("detaching trunk %s: %w", t.ID, err)
		}
	}
	// Detaching takes a moment in EC2; until it is done the delete fails with a conflict and
	// the request is retried with backoff.
	if err := cloud.IgnoreNotFound(c.ec2.DeleteNetworkInterface(ctx, t.ID)); err != nil {
		return fmt.Errorf("deleting trunk %s: %w", t.ID, err)
	}
	c.store.RemoveTrunk(nodeName)
	log.Info("freed the ENIs of a deleted node")
	return nil
}

// BranchDeleter is what deleting a branch ENI needs.
type BranchDeleter interface {
	DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error
	DeleteNetworkInterface(ctx context.Context, id string) error
}

// DeleteBranch disassociates and deletes a branch ENI; both steps tolerate work already done.
func DeleteBranch(ctx context.Context, ec2 BranchDeleter, b inventory.Branch) error {
	if b.AssociationID != "" {
		err := ec2.DisassociateTrunkInterface(ctx, b.AssociationID, "podsg-disassociate-"+b.AssociationID)
		if cloud.IgnoreNotFound(err) != nil {
			return fmt.Errorf("disassociating branch %s: %w", b.ENIID, err)
		}
	}
	if b.ENIID == "" {
		return nil
	}
	if err := cloud.IgnoreNotFound(ec2.DeleteNetworkInterface(ctx, b.ENIID)); err != nil {
		return fmt.Errorf("deleting branch %s: %w", b.ENIID, err)
	}
	return nil
}
