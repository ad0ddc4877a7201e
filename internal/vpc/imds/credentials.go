package imds

import (
	"encoding/json"
	"sync"
	"time"
)

// IAM is the instance profile associated with an instance.
type IAM struct {
	ProfileARN, ProfileID string
}

// Credentials are temporary credentials of an instance profile's role.
type Credentials struct {
	AccessKeyID, SecretAccessKey, Token string
	Expiration                          time.Time
}

// CredentialSource issues credentials of the role in an instance profile
// for an instance; ok is false when the profile holds no role.
type CredentialSource func(profileARN, instanceID string) (role string, c Credentials, ok bool)

// refreshBefore: credentials are replaced this long before they expire, so
// a client always gets ones with at least this much time left (EC2 makes
// new ones available at least five minutes ahead; SDKs refresh up to
// fifteen minutes ahead).
const refreshBefore = time.Hour

// credCache keeps an instance's current credentials until they are due
// for refresh, so every reader in the instance sees the same ones, as on EC2.
type credCache struct {
	mu      sync.Mutex
	profile string
	role    string
	creds   Credentials
	issued  time.Time
}

// get returns the role and its credentials, issuing new ones when there
// are none for this profile or they are due.
func (c *credCache) get(src CredentialSource, inst *Instance, now time.Time) (string, Credentials, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.profile == inst.IAM.ProfileARN && c.role != "" && now.Before(c.creds.Expiration.Add(-refreshBefore)) {
		return c.role, c.creds, c.issued, true
	}
	role, creds, ok := src(inst.IAM.ProfileARN, inst.ID)
	if !ok {
		c.role = ""
		return "", Credentials{}, time.Time{}, false
	}
	c.profile, c.role, c.creds, c.issued = inst.IAM.ProfileARN, role, creds, now
	return role, creds, now, true
}

// iamEntries are the iam/ part of the metadata tree, with EC2's JSON shapes.
func (h *Handler) iamEntries(inst *Instance, t map[string]string) {
	if inst.IAM == nil || h.creds == nil {
		return
	}
	md := "latest/meta-data/iam/"
	role, c, issued, ok := h.cache.get(h.creds, inst, h.now())
	if !ok {
		// A profile without a role: EC2 serves iam/info alone.
		t[md+"info"] = jsonDoc(map[string]string{"Code": "Success", "LastUpdated": stamp(h.now()),
			"InstanceProfileArn": inst.IAM.ProfileARN, "InstanceProfileId": inst.IAM.ProfileID})
		return
	}
	t[md+"info"] = jsonDoc(map[string]string{"Code": "Success", "LastUpdated": stamp(issued),
		"InstanceProfileArn": inst.IAM.ProfileARN, "InstanceProfileId": inst.IAM.ProfileID})
	t[md+"security-credentials/"+role] = jsonDoc(map[string]string{"Code": "Success", "LastUpdated": stamp(issued),
		"Type": "AWS-HMAC", "AccessKeyId": c.AccessKeyID, "SecretAccessKey": c.SecretAccessKey, "Token": c.Token,
		"Expiration": stamp(c.Expiration)})
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func jsonDoc(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
