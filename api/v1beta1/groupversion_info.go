// Package v1beta1 holds the SecurityGroupPolicy API, wire-compatible with AWS's
// vpcresources.k8s.aws/v1beta1 so that manifests written for EKS apply unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=vpcresources.k8s.aws
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the API group and version AWS's CRD uses; keeping it lets existing manifests apply.
	GroupVersion = schema.GroupVersion{Group: "vpcresources.k8s.aws", Version: "v1beta1"}

	// SchemeBuilder registers the types of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
