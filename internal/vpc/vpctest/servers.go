package vpctest

import (
	"io"
	"net"
	"testing"

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
