package imds

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestInstanceProfileCredentials: iam/info and iam/security-credentials/
// answer as on EC2 for an instance with a profile, the same credentials
// until they are due for refresh, new ones after; nothing without a profile.
func TestInstanceProfileCredentials(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	issued := 0
	src := func(profileARN, instanceID string) (string, Credentials, bool) {
		issued++
		if profileARN != "arn:aws:iam::111122223333:instance-profile/node" || instanceID != "i-0123456789abcdef0" {
			t.Errorf("asked for %s of %s", profileARN, instanceID)
		}
		return "node-role", Credentials{AccessKeyID: "ASIA" + strings.Repeat("A", 15) + string(rune('0'+issued)), SecretAccessKey: "s", Token: "tok",
			Expiration: now.Add(6 * time.Hour)}, true
	}
	inst := &Instance{ID: "i-0123456789abcdef0", IAM: &IAM{ProfileARN: "arn:aws:iam::111122223333:instance-profile/node", ProfileID: "AIPAEXAMPLE"}}
	h := NewHandler(func() *Instance { return inst }, src)
	h.now = func() time.Time { return now }
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/latest/meta-data/iam/"); code != 200 || body != "info\nsecurity-credentials/" {
		t.Fatalf("iam/ = %d %q", code, body)
	}
	var info map[string]string
	if _, body := get("/latest/meta-data/iam/info"); json.Unmarshal([]byte(body), &info) != nil ||
		info["Code"] != "Success" || info["InstanceProfileArn"] != inst.IAM.ProfileARN || info["InstanceProfileId"] != "AIPAEXAMPLE" {
		t.Fatalf("iam/info = %q", body)
	}
	if _, body := get("/latest/meta-data/iam/security-credentials/"); body != "node-role" {
		t.Fatalf("security-credentials/ = %q", body)
	}
	creds := func() map[string]string {
		var c map[string]string
		_, body := get("/latest/meta-data/iam/security-credentials/node-role")
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			t.Fatalf("credentials %q: %v", body, err)
		}
		return c
	}
	first := creds()
	if first["Code"] != "Success" || first["Type"] != "AWS-HMAC" || first["Token"] != "tok" || first["Expiration"] != "2026-01-01T18:00:00Z" ||
		first["SecretAccessKey"] != "s" || !strings.HasPrefix(first["AccessKeyId"], "ASIA") {
		t.Fatalf("credentials = %v", first)
	}
	now = now.Add(4 * time.Hour) // 2 h left: still the same
	if c := creds(); c["AccessKeyId"] != first["AccessKeyId"] {
		t.Fatalf("credentials changed with 2 h left: %v", c)
	}
	now = now.Add(90 * time.Minute) // 30 min left: due
	if c := creds(); c["AccessKeyId"] == first["AccessKeyId"] || c["LastUpdated"] != "2026-01-01T17:30:00Z" {
		t.Fatalf("credentials not refreshed with 30 min left: %v", c)
	}
	inst = &Instance{ID: "i-0123456789abcdef0"}
	if code, _ := get("/latest/meta-data/iam/info"); code != http.StatusNotFound {
		t.Fatalf("iam/info without a profile = %d", code)
	}
}
