package query

// Caller is who made a request, as its signature shows: the account's root
// (the long-term keys of --credentials, or anyone when signatures are not
// checked) or a role session holding temporary credentials from the local
// STS.
type Caller struct {
	Account     string
	ARN         string // arn:aws:iam::ACCOUNT:root or arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION
	UserID      string // the account id for root; ROLE-ID:SESSION for a role session
	AccessKeyID string
	// RoleName and SessionName are set for a role session.
	RoleName    string
	SessionName string
	// Anonymous is an unsigned call to an action that takes none
	// (AssumeRoleWithWebIdentity).
	Anonymous bool
}

// Root is the account's root user, the caller of long-term keys.
func Root(account, accessKeyID string) Caller {
	return Caller{Account: account, ARN: "arn:aws:iam::" + account + ":root", UserID: account, AccessKeyID: accessKeyID}
}

// IsRoot reports whether the caller is the account's root user.
func (c Caller) IsRoot() bool { return !c.Anonymous && c.RoleName == "" }
