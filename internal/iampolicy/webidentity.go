package iampolicy

import "time"

// WebIdentity is an OIDC token as STS's AssumeRoleWithWebIdentity puts it before a role's
// trust policy, once it has verified the token.
type WebIdentity struct {
	// ProviderARN is the IAM OIDC provider the token's issuer is registered as.
	ProviderARN string
	// ProviderURL is the provider's URL as IAM stores it (the issuer without https:// and a
	// trailing slash): the prefix of the token's condition keys.
	ProviderURL string
	// Subject is the token's sub (system:serviceaccount:NS:NAME for a Kubernetes issuer);
	// Audience the one of its aud claims that is a client ID of the provider.
	Subject, Audience string
	// AMR is the token's amr claim, if any.
	AMR []string
}

// Request is the trust policy question for role roleARN at time now: the provider as the
// Federated principal, action sts:AssumeRoleWithWebIdentity, and the claims under the
// provider's name (URL:sub, URL:aud, URL:amr) beside aws:FederatedProvider and
// aws:CurrentTime. The local STS asks it, and podsg explain asks it to say what STS would.
func (w WebIdentity) Request(roleARN string, now time.Time) *Request {
	ctx := NewContext(map[string][]string{
		w.ProviderURL + ":sub": {w.Subject}, w.ProviderURL + ":aud": {w.Audience},
		"aws:CurrentTime": {now.UTC().Format(time.RFC3339)}, "aws:FederatedProvider": {w.ProviderARN},
	})
	if len(w.AMR) > 0 {
		ctx.Set(w.ProviderURL+":amr", w.AMR...)
	}
	return &Request{
		Principal: Principal{Type: "Federated", IDs: []string{w.ProviderARN}},
		Action:    "sts:AssumeRoleWithWebIdentity", Resource: roleARN, Context: ctx,
	}
}
