// Package oidc verifies OpenID Connect ID tokens (JWTs signed with RS256
// or ES256) against the keys their issuer publishes, as AWS STS does for
// AssumeRoleWithWebIdentity: {iss}/.well-known/openid-configuration names
// jwks_uri, whose key set is fetched over HTTP(S) and cached. An https
// issuer is trusted if its certificate chain verifies against the system
// roots or if a certificate in the chain has one of the registered SHA-1
// thumbprints (IAM's OIDC provider thumbprints) — a self-signed
// kube-apiserver is trusted by its thumbprint. The audience is the
// caller's to check: only it knows the provider's client ids.
package oidc
