//go:build awsrc

package sidebyside

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
)

// sandbox is a network namespace of the test's own in which a controller runs. Its loopback is
// private: AWS's controller serves its webhooks on port 9443 and its health checks on 61779,
// which no flag changes and which other programs on the machine (a local cluster's
// podsg-controller) may hold. The test process relays TCP between the two loopbacks: the
// apiserver and the local VPC into the sandbox, the controller's webhook server out of it. Both
// contenders run this way, so both pay the same relay. No address leaves either loopback.
type sandbox struct {
	name string
	wg   sync.WaitGroup
}

var sandboxes atomic.Int32

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.IPRoute2)
	s := &sandbox{name: fmt.Sprintf("podsg-sbs-%d-%d", os.Getpid(), sandboxes.Add(1))}
	if err := namespace.Create(s.name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.wg.Wait()
		if err := namespace.Delete(s.name); err != nil {
			t.Error(err)
		}
	})
	h, err := namespace.Handle(s.name)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("bringing up the sandbox's loopback: %v", err)
	}
	return s
}

// into makes 127.0.0.1:port inside the sandbox reach 127.0.0.1:port outside.
func (s *sandbox) into(t testing.TB, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var ln net.Listener
	if err := namespace.Do(s.name, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listening on %s in the sandbox: %v", addr, err)
	}
	s.relay(t, ln, func() (net.Conn, error) { return net.Dial("tcp", addr) })
}

// outOf makes 127.0.0.1:outside reach 127.0.0.1:inside in the sandbox.
func (s *sandbox) outOf(t testing.TB, outside, inside int) {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(outside)))
	if err != nil {
		t.Fatal(err)
	}
	target := net.JoinHostPort("127.0.0.1", strconv.Itoa(inside))
	s.relay(t, ln, func() (c net.Conn, err error) {
		// A socket opened in the sandbox stays there, whichever thread uses it later.
		err = namespace.Do(s.name, func() error { c, err = net.Dial("tcp", target); return err })
		return c, err
	})
}

// intoURL relays the port of a loopback URL into the sandbox.
func (s *sandbox) intoURL(t testing.TB, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatalf("no port in %q", raw)
	}
	s.into(t, port)
}

// relay accepts on ln until the test ends and copies each connection both ways to dial's.
func (s *sandbox) relay(t testing.TB, ln net.Listener, dial func() (net.Conn, error)) {
	var mu sync.Mutex
	open := map[net.Conn]struct{}{}
	track := func(c net.Conn, add bool) bool {
		mu.Lock()
		defer mu.Unlock()
		if add && open == nil {
			return false // closing down
		}
		if add {
			open[c] = struct{}{}
		} else {
			delete(open, c)
		}
		return true
	}
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range open {
			_ = c.Close()
		}
		open = nil
		mu.Unlock()
	})
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.pipe(c, dial, track) })
		}
	})
}

func (s *sandbox) pipe(c net.Conn, dial func() (net.Conn, error), track func(net.Conn, bool) bool) {
	defer func() { _ = c.Close() }()
	d, err := dial()
	if err != nil {
		return
	}
	defer func() { _ = d.Close() }()
	if !track(c, true) || !track(d, true) {
		return
	}
	defer track(c, false)
	defer track(d, false)
	done := make(chan struct{}, 2)
	half := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go half(d, c)
	go half(c, d)
	<-done
	<-done
}

// command runs bin inside the sandbox: ip netns exec execs it, so the process is bin itself.
func (s *sandbox) command(t testing.TB, bin string, args ...string) (string, []string) {
	t.Helper()
	ip, err := exec.LookPath("ip")
	if err != nil {
		t.Fatal(errors.Join(err, errors.New("iproute2 runs the controllers in their sandbox")))
	}
	return ip, append([]string{"netns", "exec", s.name, bin}, args...)
}
