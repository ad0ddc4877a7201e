package imds

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

// TestTokenStore pins expiry and the cap: a token is valid strictly before
// its expiry, expired tokens go when the next one is issued, and at the cap
// the token that expires first makes room.
func TestTokenStore(t *testing.T) {
	type put struct {
		tok      string
		now, exp int // seconds after t0
	}
	tests := map[string]struct {
		max       int
		puts      []put
		checkAt   int
		valid     []string
		invalid   []string
		wantCount int
	}{
		"valid until expiry": {max: 10, puts: []put{{"a", 0, 10}}, checkAt: 9, valid: []string{"a"}, wantCount: 1},
		"expired at expiry":  {max: 10, puts: []put{{"a", 0, 10}}, checkAt: 10, invalid: []string{"a"}, wantCount: 1},
		"never issued":       {max: 10, puts: []put{{"a", 0, 10}}, checkAt: 1, invalid: []string{"b"}, wantCount: 1},
		"expired tokens go at the next issue": {max: 10,
			puts:    []put{{"a", 0, 5}, {"b", 0, 20}, {"c", 1, 6}, {"d", 6, 30}},
			checkAt: 6, valid: []string{"b", "d"}, invalid: []string{"a", "c"}, wantCount: 2},
		"at the cap the soonest expiry goes": {max: 3,
			puts:    []put{{"a", 0, 100}, {"b", 0, 50}, {"c", 0, 200}, {"d", 1, 300}},
			checkAt: 2, valid: []string{"a", "c", "d"}, invalid: []string{"b"}, wantCount: 3},
		"the cap holds under a flood": {max: 3,
			puts:    []put{{"a", 0, 9}, {"b", 0, 9}, {"c", 0, 9}, {"d", 0, 9}, {"e", 0, 9}, {"f", 0, 9}},
			checkAt: 1, wantCount: 3},
		"expiry frees room before the cap evicts": {max: 2,
			puts:    []put{{"a", 0, 5}, {"b", 0, 100}, {"c", 5, 100}},
			checkAt: 6, valid: []string{"b", "c"}, invalid: []string{"a"}, wantCount: 2},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := newTokenStore(tc.max)
			for _, p := range tc.puts {
				s.add(p.tok, at(p.now), at(p.exp))
			}
			for _, tok := range tc.valid {
				if !s.valid(tok, at(tc.checkAt)) {
					t.Errorf("%s invalid at +%ds", tok, tc.checkAt)
				}
			}
			for _, tok := range tc.invalid {
				if s.valid(tok, at(tc.checkAt)) {
					t.Errorf("%s valid at +%ds", tok, tc.checkAt)
				}
			}
			if s.len() != tc.wantCount || len(s.byExp) != tc.wantCount {
				t.Errorf("%d tokens kept (heap %d), want %d", s.len(), len(s.byExp), tc.wantCount)
			}
		})
	}
}

// BenchmarkTokenPUT: the cost of PUT /latest/api/token with n tokens live,
// in a steady state where tokens expire as fast as they are issued (each
// valid ttl seconds, one every ttl/n seconds of fake time). It stays flat
// as n grows; at n beyond maxTokens the cap, not expiry, makes room.
// Before the token store, each PUT scanned every live token (1.2 ms at
// 40,000).
func BenchmarkTokenPUT(b *testing.B) {
	for _, n := range []int{100, 1000, maxTokens, 40000} {
		b.Run("live="+strconv.Itoa(n), func(b *testing.B) {
			h := NewHandler(func() *Instance { return &Instance{ID: "i-0123456789abcdef0"} }, nil)
			now := t0
			h.now = func() time.Time { return now }
			h.setTTL = func(net.Conn, int) error { return nil }
			ttl := min(n, maxTTL)
			step := time.Duration(ttl) * time.Second / time.Duration(n)
			put := func() {
				r := httptest.NewRequest(http.MethodPut, "/latest/api/token", nil)
				r.Header.Set(ttlHeader, strconv.Itoa(ttl))
				r = r.WithContext(ConnContext(r.Context(), fakeConn{}))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("PUT: %d %s", w.Code, w.Body)
				}
				now = now.Add(step)
			}
			for range n {
				put()
			}
			for b.Loop() {
				put()
			}
			b.StopTimer()
			if got, want := h.tokens.len(), min(n, maxTokens); got > want {
				b.Fatalf("%d tokens live, want at most %d", got, want)
			}
		})
	}
}

// fakeConn stands for the connection of a request that never reaches a socket.
type fakeConn struct{ net.Conn }
