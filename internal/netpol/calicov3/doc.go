// Package calicov3 holds the part of Calico's projectcalico.org/v3 policy API that podsg
// serves as CRDs: GlobalNetworkPolicy and the namespaced NetworkPolicy, with their rules'
// fields as Calico names them, so that Calico manifests (the seeds' among them) apply
// unchanged. What the fields mean, and which of them podsg enforces, is internal/netpol's
// (calico.go); fields it does not enforce are still kept here, so that the apiserver stores
// them as written and netpol can refuse the policy by name instead of enforcing less than it
// says.
//
// It is internal: api/v1beta1 is podsg's own API, this one is Calico's.
//
// +kubebuilder:object:generate=true
// +groupName=projectcalico.org
// +versionName=v3
package calicov3

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is Calico's: manifests written for Calico name it.
	GroupVersion = schema.GroupVersion{Group: "projectcalico.org", Version: "v3"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &GlobalNetworkPolicy{}, &GlobalNetworkPolicyList{}, &NetworkPolicy{}, &NetworkPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
