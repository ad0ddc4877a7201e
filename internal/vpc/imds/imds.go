// Package imds serves EC2 instance metadata (IMDSv1 and the IMDSv2 token
// flow) for one instance per handler. It is plain HTTP: the data path
// decides where it listens (169.254.169.254:80 inside each instance
// namespace).
package imds

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Instance is what the metadata service knows about one instance.
type Instance struct {
	ID, Type, ImageID, AvailabilityZone, Region, AccountID string
	Interfaces                                             []Interface
}

// Interface is one attached ENI, the primary (device 0) first.
type Interface struct {
	MAC, ID, SubnetID, SubnetCIDR, VPCID string
	DeviceNumber                         int
	IPv4s, VPCCIDRs, SecurityGroupIDs    []string
}

const (
	tokenHeader = "X-Aws-Ec2-Metadata-Token" //nolint:gosec // the name of IMDSv2's token header, not a credential
	ttlHeader   = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	maxTTL      = 21600
)

// Handler serves one instance's metadata; get returns the current view
// (nil once the instance is gone).
type Handler struct {
	get    func() *Instance
	now    func() time.Time
	mu     sync.Mutex
	tokens map[string]time.Time
}

// NewHandler returns the metadata handler of one instance.
func NewHandler(get func() *Instance) *Handler {
	return &Handler{get: get, now: time.Now, tokens: map[string]time.Time{}}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/latest/api/token" {
		h.token(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// IMDSv1 (no token) is allowed, as with HttpTokens=optional; a token
	// that is present must be valid.
	if tok := r.Header.Get(tokenHeader); tok != "" && !h.valid(tok) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	inst := h.get()
	if inst == nil {
		http.NotFound(w, r)
		return
	}
	body, ok := lookup(inst, r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body))
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("X-Forwarded-For") != "" {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(r.Header.Get(ttlHeader))
	if err != nil || ttl < 1 || ttl > maxTTL {
		http.Error(w, "Bad Request", http.StatusBadRequest)
		return
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	h.mu.Lock()
	now := h.now()
	for t, exp := range h.tokens {
		if now.After(exp) {
			delete(h.tokens, t)
		}
	}
	h.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	h.mu.Unlock()
	w.Header().Set(ttlHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

func (h *Handler) valid(tok string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	exp, ok := h.tokens[tok]
	return ok && h.now().Before(exp)
}

// lookup answers a GET: a leaf's value, or a directory's listing (children
// one per line, sub-directories with a trailing slash).
func lookup(inst *Instance, path string) (string, bool) {
	tree := inst.tree()
	p := strings.TrimPrefix(path, "/")
	if v, ok := tree[p]; ok {
		return v, true
	}
	dir := strings.TrimSuffix(p, "/") + "/"
	if dir == "/" {
		dir = ""
	}
	seen := map[string]bool{}
	for k := range tree {
		if rest, ok := strings.CutPrefix(k, dir); ok && rest != "" {
			child, _, sub := strings.Cut(rest, "/")
			if sub {
				child += "/"
			}
			seen[child] = true
		}
	}
	if len(seen) == 0 {
		return "", false
	}
	out := make([]string, 0, len(seen))
	for c := range seen {
		out = append(out, c)
	}
	sort.Strings(out)
	return strings.Join(out, "\n"), true
}

func (inst *Instance) tree() map[string]string {
	md := "latest/meta-data/"
	t := map[string]string{
		md + "instance-id":                          inst.ID,
		md + "instance-type":                        inst.Type,
		md + "ami-id":                               inst.ImageID,
		md + "placement/availability-zone":          inst.AvailabilityZone,
		md + "placement/region":                     inst.Region,
		md + "services/domain":                      "amazonaws.com",
		"latest/dynamic/instance-identity/document": inst.document(),
	}
	for i, ni := range inst.Interfaces {
		if i == 0 {
			t[md+"mac"] = ni.MAC
			if len(ni.IPv4s) > 0 {
				t[md+"local-ipv4"] = ni.IPv4s[0]
			}
		}
		p := md + "network/interfaces/macs/" + ni.MAC + "/"
		t[p+"mac"] = ni.MAC
		t[p+"device-number"] = strconv.Itoa(ni.DeviceNumber)
		t[p+"interface-id"] = ni.ID
		t[p+"local-ipv4s"] = strings.Join(ni.IPv4s, "\n")
		t[p+"subnet-id"] = ni.SubnetID
		t[p+"subnet-ipv4-cidr-block"] = ni.SubnetCIDR
		t[p+"vpc-id"] = ni.VPCID
		t[p+"vpc-ipv4-cidr-blocks"] = strings.Join(ni.VPCCIDRs, "\n")
		if len(ni.VPCCIDRs) > 0 {
			t[p+"vpc-ipv4-cidr-block"] = ni.VPCCIDRs[0]
		}
		t[p+"security-group-ids"] = strings.Join(ni.SecurityGroupIDs, "\n")
	}
	return t
}

// document is the instance identity document (unsigned).
func (inst *Instance) document() string {
	doc := map[string]any{
		"accountId": inst.AccountID, "architecture": "x86_64", "availabilityZone": inst.AvailabilityZone,
		"imageId": inst.ImageID, "instanceId": inst.ID, "instanceType": inst.Type, "region": inst.Region,
		"version": "2017-09-30",
	}
	if len(inst.Interfaces) > 0 && len(inst.Interfaces[0].IPv4s) > 0 {
		doc["privateIp"] = inst.Interfaces[0].IPv4s[0]
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}
