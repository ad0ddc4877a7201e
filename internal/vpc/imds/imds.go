// Package imds serves EC2 instance metadata (IMDSv1 and the IMDSv2 token
// flow) for one instance per handler. It is plain HTTP: the data path
// decides where it listens (169.254.169.254:80 inside each instance
// namespace).
package imds

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Instance is what the metadata service knows about one instance.
type Instance struct {
	ID, Type, ImageID, AvailabilityZone, Region, AccountID string
	Interfaces                                             []Interface
	Options                                                Options
	// IAM is the associated instance profile (nil: none).
	IAM *IAM
}

// Options are an instance's metadata options, as ModifyInstanceMetadataOptions sets them.
type Options struct {
	// Disabled refuses every request (HttpEndpoint=disabled).
	Disabled bool
	// TokensRequired refuses metadata requests without a token (HttpTokens=required).
	TokensRequired bool
	// PutResponseHopLimit is the IP TTL of the packets answering a token
	// request (HttpPutResponseHopLimit, 1..64): each router on the way back
	// takes one, so a client more hops away than that gets no answer. 0
	// means 1, EC2's default.
	PutResponseHopLimit int
}

// hopLimit is the TTL of a token reply.
func (o Options) hopLimit() int { return max(o.PutResponseHopLimit, 1) }

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
	setTTL func(c net.Conn, ttl int) error
	mu     sync.Mutex
	tokens *tokenStore
	// creds issues instance profile credentials (nil: iam/ is absent).
	creds CredentialSource
	cache credCache
}

// NewHandler returns the metadata handler of one instance; creds may be
// nil (no iam/ metadata). The server it runs in must set ConnContext, or
// token requests fail: the hop limit is applied to the connection.
func NewHandler(get func() *Instance, creds CredentialSource) *Handler {
	return &Handler{get: get, now: time.Now, setTTL: setTTL, tokens: newTokenStore(maxTokens), creds: creds}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	inst := h.get()
	if inst == nil {
		http.NotFound(w, r)
		return
	}
	if inst.Options.Disabled {
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	if r.URL.Path == "/latest/api/token" {
		h.token(w, r, inst.Options)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	// Without a token: IMDSv1, unless HttpTokens=required. A token that is
	// present must be valid.
	tok := r.Header.Get(tokenHeader)
	if (tok == "" && inst.Options.TokensRequired) || (tok != "" && !h.valid(tok)) {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	tree := inst.tree()
	h.iamEntries(inst, tree)
	body, ok := lookup(tree, r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(body))
}

func (h *Handler) token(w http.ResponseWriter, r *http.Request, opts Options) {
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
	// The reply leaves with the hop limit as its IP TTL, as on EC2, so a
	// client further away (a container behind the instance) gets nothing.
	// Without that no token goes out: the limit would not hold.
	c, _ := r.Context().Value(connKey{}).(net.Conn)
	if c == nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	if err := h.setTTL(c, opts.hopLimit()); err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	h.mu.Lock()
	now := h.now()
	h.tokens.add(tok, now, now.Add(time.Duration(ttl)*time.Second))
	h.mu.Unlock()
	w.Header().Set(ttlHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(tok))
}

func (h *Handler) valid(tok string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.tokens.valid(tok, h.now())
}

type connKey struct{}

// ConnContext is the http.Server ConnContext a Handler needs: it hands
// each request its connection, whose IP TTL a token reply sets.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// setTTL sets the IP TTL of the packets c sends from now on.
func setTTL(c net.Conn, ttl int) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return fmt.Errorf("connection %T has no socket", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("reaching the socket: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL, ttl) }); err != nil {
		return fmt.Errorf("reaching the socket: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("setting IP_TTL %d: %w", ttl, serr)
	}
	return nil
}

// lookup answers a GET: a leaf's value, or a directory's listing (children
// one per line, sub-directories with a trailing slash).
func lookup(tree map[string]string, path string) (string, bool) {
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
