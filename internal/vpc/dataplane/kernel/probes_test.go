package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
)

const probeTimeout = 400 * time.Millisecond

// tcpProbe connects from inside ns and expects the server's "ok".
func tcpProbe(ns, addr string) error {
	return namespace.Do(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, probeTimeout)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(probeTimeout))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "ok\n" {
			return fmt.Errorf("unexpected answer %q", line)
		}
		return nil
	})
}

// udpProbe sends one datagram from a fresh socket (a new flow) and waits
// for the echo.
func udpProbe(ns, addr string) error {
	return namespace.Do(ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(probeTimeout))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if string(buf[:n]) != "ping" {
			return errors.New("bad echo")
		}
		return nil
	})
}

func pingProbe(ns, ip string) error {
	out, err := exec.Command("ip", "netns", "exec", ns, "ping", "-c1", "-W1", ip).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ping %s: %w: %s", ip, err, strings.TrimSpace(string(out)))
	}
	return nil
}

type probe struct {
	name  string
	run   func() error
	allow bool
}

func expectProbes(t testing.TB, probes []probe) {
	t.Helper()
	for _, p := range probes {
		err := p.run()
		if p.allow && err != nil {
			t.Errorf("%s: want allowed, got %v", p.name, err)
		}
		if !p.allow && err == nil {
			t.Errorf("%s: want denied, but it passed", p.name)
		}
	}
}

// expectNoRootEscape checks with `ip route get` (never a real connection)
// that the root namespace does not send ip out of its default route.
func expectNoRootEscape(t testing.TB, ip string) {
	t.Helper()
	out, _ := exec.Command("ip", "route", "get", ip).CombinedOutput()
	if s := string(out); strings.Contains(s, " via ") || strings.Contains(s, "dev eth0") {
		t.Fatalf("root namespace would route %s out of the machine: %s", ip, s)
	}
}
