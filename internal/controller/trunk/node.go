package trunk

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/podsg/podsg/internal/cloud"
	"github.com/podsg/podsg/internal/controller/inventory"
)

// OfNode reports whether trunk ENI e, tagged with n's name, is n's and not the trunk of an
// earlier Node of the same name (deleted and created again, a new instance, while
// podsg-controller was down). An attached trunk is the trunk of the instance it is attached
// to: ensureTrunk adopts any trunk on the node's instance, so a node re-registered from the
// same instance keeps it. A detached one, or one whose node's instance is not known yet, is
// n's when its node-UID tag names n; a trunk made before that tag existed has none and stays
// n's, as before.
func OfNode(e cloud.NetworkInterface, n *corev1.Node) bool {
	if instanceID, err := cloud.InstanceID(n.Spec.ProviderID); err == nil && e.InstanceID != "" {
		return e.InstanceID == instanceID
	}
	uid, tagged := e.Tags[cloud.TagNodeUID]
	return !tagged || uid == string(n.UID)
}

// replaced reports whether t, the trunk the store holds for n's name, is on another instance
// than n's: the node was deleted and created again under its name before a reconcile saw it
// gone, so t is the old node's.
func replaced(t inventory.Trunk, n *corev1.Node) bool {
	instanceID, err := cloud.InstanceID(n.Spec.ProviderID)
	return err == nil && t.InstanceID != instanceID
}
