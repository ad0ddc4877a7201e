package trunk

import (
	"context"
	"errors"
	"fmt"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/podsg/podsg/internal/cloud"
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
		if err := cloud.FreeENI(ctx, c.ec2, b.Ref()); err != nil {
			errs = append(errs, err)
			continue
		}
		c.store.Drop(nodeName, b)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("freeing branch ENIs of deleted node %s: %w", nodeName, err)
	}
	// Detaching takes a moment in EC2; until it is done the delete fails with a conflict and
	// the request is retried with backoff.
	if err := cloud.FreeENI(ctx, c.ec2, t.Ref()); err != nil {
		return fmt.Errorf("freeing the trunk of deleted node %s: %w", nodeName, err)
	}
	c.store.RemoveTrunk(nodeName)
	log.Info("freed the ENIs of a deleted node")
	return nil
}
