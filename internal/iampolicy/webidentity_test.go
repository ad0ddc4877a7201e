package iampolicy

import (
	"testing"
	"time"
)

// TestWebIdentityRequest: a trust policy of the shape eksctl writes for a ServiceAccount sees
// the token's claims under the provider's URL and the provider as the Federated principal.
func TestWebIdentityRequest(t *testing.T) {
	const (
		provider = "arn:aws:iam::111122223333:oidc-provider/oidc.example/id/ABC"
		url      = "oidc.example/id/ABC"
		role     = "arn:aws:iam::111122223333:role/app"
	)
	trust, err := Parse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"`+provider+`"},
		"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"`+url+`:sub":"system:serviceaccount:shop:app","`+url+`:aud":"sts.amazonaws.com"},
		"StringLikeIfExists":{"`+url+`:amr":"mfa*"}}}]}`, Trust)
	if err != nil {
		t.Fatal(err)
	}
	ok := WebIdentity{ProviderARN: provider, ProviderURL: url, Subject: "system:serviceaccount:shop:app", Audience: "sts.amazonaws.com"}
	tests := map[string]struct {
		id   func(WebIdentity) WebIdentity
		want Decision
	}{
		"the ServiceAccount and audience named": {func(w WebIdentity) WebIdentity { return w }, Allowed},
		"another ServiceAccount":                {func(w WebIdentity) WebIdentity { w.Subject = "system:serviceaccount:shop:other"; return w }, ImplicitDeny},
		"another audience":                      {func(w WebIdentity) WebIdentity { w.Audience = "vault"; return w }, ImplicitDeny},
		"another provider": {func(w WebIdentity) WebIdentity {
			w.ProviderARN, w.ProviderURL = "arn:aws:iam::111122223333:oidc-provider/other.example", "other.example"
			return w
		}, ImplicitDeny},
		"an amr that matches":        {func(w WebIdentity) WebIdentity { w.AMR = []string{"mfa-otp"}; return w }, Allowed},
		"an amr that does not match": {func(w WebIdentity) WebIdentity { w.AMR = []string{"pwd"}; return w }, ImplicitDeny},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := trust.Evaluate(tc.id(ok).Request(role, time.Now())); got != tc.want {
				t.Fatalf("Evaluate = %v, want %v", got, tc.want)
			}
		})
	}
}
