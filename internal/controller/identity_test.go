package controller

import (
	"context"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// reviewer answers SelfSubjectReviews as the apiserver would for user, or fails with err.
type reviewer struct {
	user  string
	err   error
	calls int
}

func (r *reviewer) Create(_ context.Context, obj client.Object, _ ...client.CreateOption) error {
	r.calls++
	if r.err != nil {
		return r.err
	}
	obj.(*authenticationv1.SelfSubjectReview).Status.UserInfo = authenticationv1.UserInfo{
		Username: r.user, Groups: []string{"system:masters", "system:authenticated"}}
	return nil
}

func TestResolveIdentity(t *testing.T) {
	// What an apiserver without authentication.k8s.io/v1 SelfSubjectReviews answers.
	noAPI := apierrors.NewNotFound(schema.GroupResource{Group: "authentication.k8s.io", Resource: "selfsubjectreviews"}, "")
	tests := map[string]struct {
		override  string
		apiserver reviewer
		want      string
		wantErr   []string // substrings of the error
		wantCalls int
	}{
		"the flag wins without asking": {override: "podsg-admin", apiserver: reviewer{user: "someone-else"},
			want: "podsg-admin"},
		"learnt from the apiserver otherwise": {apiserver: reviewer{user: "podsg-test-admin"},
			want: "podsg-test-admin", wantCalls: 1},
		"a service account": {apiserver: reviewer{user: "system:serviceaccount:podsg-system:podsg-controller"},
			want: "system:serviceaccount:podsg-system:podsg-controller", wantCalls: 1},
		"no SelfSubjectReview API and no flag": {apiserver: reviewer{err: noAPI}, wantCalls: 1,
			wantErr: []string{"SelfSubjectReview", "not found", "--controller-username"}},
		"an answer without a user name": {apiserver: reviewer{}, wantCalls: 1,
			wantErr: []string{"without a user name", "--controller-username"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := resolveIdentity(t.Context(), &tc.apiserver, tc.override)
			if tc.apiserver.calls != tc.wantCalls {
				t.Errorf("%d SelfSubjectReviews, want %d", tc.apiserver.calls, tc.wantCalls)
			}
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("resolveIdentity = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("resolveIdentity = %q, want an error", got)
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
		})
	}
}
