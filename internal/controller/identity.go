package controller

import (
	"context"
	"errors"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// selfReviewer creates a SelfSubjectReview; the controller-runtime client does.
type selfReviewer interface {
	Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error
}

// resolveIdentity returns the user name the validating webhook lets write the pod annotations:
// override (--controller-username) when set, else the user the apiserver sees for
// podsg-controller's own credentials. Guessing instead (the in-cluster ServiceAccount) makes a
// controller run with any other kubeconfig deny its own annotations forever. Every
// authenticated user may create a SelfSubjectReview, so this needs no RBAC.
func resolveIdentity(ctx context.Context, kube selfReviewer, override string) (string, error) {
	if override != "" {
		return override, nil
	}
	r := &authenticationv1.SelfSubjectReview{}
	if err := kube.Create(ctx, r); err != nil {
		return "", fmt.Errorf("learning podsg-controller's own user name with a SelfSubjectReview "+
			"(authentication.k8s.io/v1, Kubernetes 1.28 and later): %w; pass --controller-username "+
			"with the user name its credentials authenticate as", err)
	}
	if r.Status.UserInfo.Username == "" {
		return "", errors.New("the apiserver answered podsg-controller's SelfSubjectReview without a user name; " +
			"pass --controller-username with the user name its credentials authenticate as")
	}
	return r.Status.UserInfo.Username, nil
}
