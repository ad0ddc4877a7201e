// Package v1beta1 holds the SecurityGroupPolicy API, wire-compatible with AWS's
// vpcresources.k8s.aws/v1beta1 so that manifests written for EKS apply unchanged.
//
// It depends only on k8s.io/apimachinery, so that anyone can import it cheaply.
//
// +kubebuilder:object:generate=true
// +groupName=vpcresources.k8s.aws
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version AWS's CRD uses; keeping it lets existing manifests apply.
	GroupVersion = schema.GroupVersion{Group: "vpcresources.k8s.aws", Version: "v1beta1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &SecurityGroupPolicy{}, &SecurityGroupPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
