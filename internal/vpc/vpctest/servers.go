package vpctest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
)

// Servers that data path tests probe, listening inside a network namespace the test created.

// ServeTCP answers every connection to addr inside ns with "ok\n" and closes it.
func ServeTCP(t testing.TB, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := namespace.Do(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listening on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "ok\n")
			_ = c.Close()
		}
	}()
}

// ServeUDP echoes every datagram sent to addr inside ns.
func ServeUDP(t testing.TB, ns, addr string) {
	t.Helper()
	var pc net.PacketConn
	if err := namespace.Do(ns, func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatalf("listening on udp %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
}

// Probe connects over network ("tcp", "udp" or "sctp") from inside ns to dst:port, from the
// address src when it is not empty, and reports whether a server of ServeTCP, ServeUDP or
// ServeSCTP answered: an answer
// is allowed, silence until timeout is a drop (the fabric and security groups drop without a
// word), and anything else (a refusal, a missing route) is an error, since every probed port
// listens.
func Probe(ns, src, dst, network string, port int, timeout time.Duration) (bool, error) {
	if network == "sctp" {
		return probeSCTP(ns, src, dst, port, timeout)
	}
	var passed bool
	err := namespace.Do(ns, func() error {
		d := net.Dialer{Timeout: timeout}
		if src != "" && network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: net.ParseIP(src)}
		} else if src != "" {
			d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
		}
		c, err := d.Dial(network, net.JoinHostPort(dst, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		defer func() { _ = c.Close() }()
		_ = c.SetDeadline(time.Now().Add(timeout))
		if network == "udp" {
			if _, err := io.WriteString(c, "ok\n"); err != nil {
				return err
			}
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		passed = line == "ok\n"
		return nil
	})
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return false, nil
	}
	if err == nil && !passed {
		err = errors.New("unexpected answer")
	}
	return passed, err
}

// Ping sends one ICMP echo request from inside ns to dst (from src when not empty): a reply is
// allowed, none within timeout (ping's exit status 1) a drop, anything else an error.
func Ping(ns, src, dst string, timeout time.Duration) (bool, error) {
	args := []string{"netns", "exec", ns, "ping", "-c1", "-W" + strconv.Itoa(int(timeout/time.Second))}
	if src != "" {
		args = append(args, "-I", src)
	}
	out, err := exec.Command("ip", append(args, dst)...).CombinedOutput()
	if exit, ok := errors.AsType[*exec.ExitError](err); ok && exit.ExitCode() == 1 {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ping: %w: %s", err, out)
	}
	return true, nil
}
