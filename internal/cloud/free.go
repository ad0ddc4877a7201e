package cloud

import (
	"context"
	"fmt"
)

// ENIFreer is what freeing an ENI calls.
type ENIFreer interface {
	DisassociateTrunkInterface(ctx context.Context, associationID, clientToken string) error
	DetachNetworkInterface(ctx context.Context, attachmentID string, force bool) error
	DeleteNetworkInterface(ctx context.Context, id string) error
}

// ENIRef names an ENI to free and what still holds it.
type ENIRef struct {
	// ID is the ENI; "" frees nothing but the association.
	ID string
	// AssociationID is the branch's trunk association, "" when it has none.
	AssociationID string
	// AttachmentID is the ENI's attachment to an instance (a trunk's), "" when it has none.
	AttachmentID string
}

// FreeENI frees an ENI podsg created in the one order EC2 accepts: disassociate it from its
// trunk, detach it (forced: the ENI is going), delete it. Every step tolerates one already done
// (NotFound), so a retry after any failure resumes where the last attempt stopped. EC2 takes a
// moment to detach; until then the delete fails with ErrConflict, which callers retry: the
// controllers with their backoff, podsg cleanup by polling.
func FreeENI(ctx context.Context, ec2 ENIFreer, e ENIRef) error {
	if e.AssociationID != "" {
		err := ec2.DisassociateTrunkInterface(ctx, e.AssociationID, "podsg-disassociate-"+e.AssociationID)
		if err := IgnoreNotFound(err); err != nil {
			return fmt.Errorf("disassociating %s (association %s): %w", e.ID, e.AssociationID, err)
		}
	}
	if e.AttachmentID != "" {
		if err := IgnoreNotFound(ec2.DetachNetworkInterface(ctx, e.AttachmentID, true)); err != nil {
			return fmt.Errorf("detaching %s: %w", e.ID, err)
		}
	}
	if e.ID == "" {
		return nil
	}
	if err := IgnoreNotFound(ec2.DeleteNetworkInterface(ctx, e.ID)); err != nil {
		return fmt.Errorf("deleting %s: %w", e.ID, err)
	}
	return nil
}
