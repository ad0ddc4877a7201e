package imds_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/vpc/imds"
)

// server serves h on loopback as the data path does (with imds.ConnContext)
// and returns its URL and the server side of its connections, newest last.
func server(t *testing.T, h http.Handler) (string, func() []net.Conn) {
	t.Helper()
	var mu sync.Mutex
	var conns []net.Conn
	s := httptest.NewUnstartedServer(h)
	s.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		mu.Lock()
		defer mu.Unlock()
		conns = append(conns, c)
		return imds.ConnContext(ctx, c)
	}
	s.Start()
	t.Cleanup(s.Close)
	return s.URL, func() []net.Conn {
		mu.Lock()
		defer mu.Unlock()
		return append([]net.Conn(nil), conns...)
	}
}

func do(t *testing.T, method, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func token(t *testing.T, base string, ttl int) string {
	t.Helper()
	status, tok := do(t, http.MethodPut, base+"/latest/api/token", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": strconv.Itoa(ttl)})
	if status != 200 {
		t.Fatalf("PUT token: %d %s", status, tok)
	}
	return tok
}

func ttlOf(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ttl int
	var serr error
	if err := rc.Control(func(fd uintptr) { ttl, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TTL) }); err != nil || serr != nil {
		t.Fatalf("reading IP_TTL: %v %v", err, serr)
	}
	return ttl
}

// TestTokenReplyTTL: a token reply leaves with the instance's hop limit as
// its IP TTL (1 by default, as on EC2), on its own connection.
func TestTokenReplyTTL(t *testing.T) {
	for _, tc := range []struct{ limit, want int }{{0, 1}, {1, 1}, {2, 2}, {64, 64}} {
		t.Run(strconv.Itoa(tc.limit), func(t *testing.T) {
			inst := &imds.Instance{ID: "i-0123456789abcdef0", Options: imds.Options{PutResponseHopLimit: tc.limit}}
			h := imds.NewHandler(func() *imds.Instance { return inst }, nil)
			url, conns := server(t, h)
			token(t, url, 60)
			cs := conns()
			if len(cs) != 1 {
				t.Fatalf("%d connections", len(cs))
			}
			if got := ttlOf(t, cs[0]); got != tc.want {
				t.Errorf("IP_TTL of the token reply = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestTokenWithoutConnection: a handler served without imds.ConnContext
// cannot apply the hop limit, so it issues no token.
func TestTokenWithoutConnection(t *testing.T) {
	h := imds.NewHandler(func() *imds.Instance { return &imds.Instance{ID: "i-0123456789abcdef0"} }, nil)
	s := httptest.NewServer(h)
	defer s.Close()
	status, body := do(t, http.MethodPut, s.URL+"/latest/api/token", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "60"})
	if status != 500 {
		t.Fatalf("PUT without a connection in the context: %d %s, want 500", status, body)
	}
}

// TestOptions: HttpEndpoint=disabled answers 403 to everything;
// HttpTokens=required answers 401 to a request without a token.
func TestOptions(t *testing.T) {
	var mu sync.Mutex
	inst := &imds.Instance{ID: "i-0123456789abcdef0"}
	set := func(o imds.Options) {
		mu.Lock()
		defer mu.Unlock()
		c := *inst
		c.Options = o
		inst = &c
	}
	h := imds.NewHandler(func() *imds.Instance { mu.Lock(); defer mu.Unlock(); return inst }, nil)
	url, _ := server(t, h)
	get := func(tok string) int {
		hdr := map[string]string{}
		if tok != "" {
			hdr["X-Aws-Ec2-Metadata-Token"] = tok
		}
		status, _ := do(t, http.MethodGet, url+"/latest/meta-data/instance-id", hdr)
		return status
	}
	tok := token(t, url, 60)
	if got := get(""); got != 200 {
		t.Errorf("IMDSv1 with HttpTokens=optional: %d", got)
	}
	set(imds.Options{TokensRequired: true})
	if got := get(""); got != 401 {
		t.Errorf("IMDSv1 with HttpTokens=required: %d, want 401", got)
	}
	if got := get(tok); got != 200 {
		t.Errorf("IMDSv2 with HttpTokens=required: %d", got)
	}
	set(imds.Options{Disabled: true})
	if got := get(tok); got != 403 {
		t.Errorf("GET with HttpEndpoint=disabled: %d, want 403", got)
	}
	if status, _ := do(t, http.MethodPut, url+"/latest/api/token", map[string]string{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": "60"}); status != 403 {
		t.Errorf("PUT with HttpEndpoint=disabled: %d, want 403", status)
	}
}

// TestTokenCap: an instance never holds more than 5,000 live tokens; past
// that, the one expiring first stops working and the others still do.
func TestTokenCap(t *testing.T) {
	const maxTokens = 5000
	h := imds.NewHandler(func() *imds.Instance { return &imds.Instance{ID: "i-0123456789abcdef0"} }, nil)
	url, _ := server(t, h)
	first := token(t, url, 600) // expires before all the others
	second := token(t, url, 21600)
	for range maxTokens - 2 {
		token(t, url, 21600)
	}
	valid := func(tok string) bool {
		status, _ := do(t, http.MethodGet, url+"/latest/meta-data/instance-id", map[string]string{"X-Aws-Ec2-Metadata-Token": tok})
		return status == 200
	}
	if !valid(first) || !valid(second) {
		t.Fatal("tokens within the cap rejected")
	}
	last := token(t, url, 21600)
	if valid(first) {
		t.Error("the token expiring first still works past the cap")
	}
	if !valid(second) || !valid(last) {
		t.Error("the cap evicted another token than the one expiring first")
	}
}
