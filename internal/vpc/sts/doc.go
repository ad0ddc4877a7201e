// Package sts is the local STS (Query API version 2011-06-15) and what
// the rest of the local VPC needs of temporary credentials: it issues
// them (AssumeRoleWithWebIdentity, AssumeRole, and the instance profile
// credentials IMDS hands out), resolves them on signed requests
// (server.Sessions) and decides what their role may do (Authorize, for
// RDS IAM authentication). Those belong together: a session token is
// only meaningful to the code that minted it.
//
// Credentials are stateless: the session token carries the session
// (role, session name, expiry) under an HMAC with a key kept in the state
// file, and the secret key is derived from it, so any number of sessions
// cost no storage and survive a restart of podsg-vpc, as AWS's do.
package sts
