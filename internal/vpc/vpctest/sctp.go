package vpctest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
)

// SCTP without the kernel's SCTP. This project's kernels have no SCTP (no module, so
// socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails), but netfilter tracks SCTP regardless
// (CONFIG_NF_CT_PROTO_SCTP is built in) and a raw socket sends and receives any IP protocol.
// So ServeSCTP and Probe(…, "sctp", …) speak the first half of SCTP's handshake themselves: the
// probe sends an INIT, the server answers with an INIT ACK carrying the probe's tag, and the probe
// counts that answer as "allowed". This is exactly what a firewall sees of an association being
// set up: a new conntrack entry for the INIT (vtag 0, a valid CRC32c, else conntrack calls the
// packet invalid) and the INIT ACK in the reply direction, so the answer also shows that the
// return traffic got through.

const (
	ipProtoSCTP      = 132
	sctpChunkInit    = 1
	sctpChunkInitAck = 2
	sctpCookieParam  = 7
	sctpHeaderLen    = 12
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sctpPacket builds an SCTP packet of one INIT or INIT ACK chunk (RFC 9260 §3.3.2, §3.3.3). An
// INIT ACK must carry a State Cookie; its bytes are the receiver's business and nobody here
// echoes it, so it is four bytes of nothing.
func sctpPacket(srcPort, dstPort uint16, vtag uint32, chunk byte, initTag uint32) []byte {
	body := 16 // initiate tag, a_rwnd, outbound and inbound streams, initial TSN
	if chunk == sctpChunkInitAck {
		body += 8
	}
	p := make([]byte, sctpHeaderLen+4+body)
	binary.BigEndian.PutUint16(p[0:], srcPort)
	binary.BigEndian.PutUint16(p[2:], dstPort)
	binary.BigEndian.PutUint32(p[4:], vtag)
	c := p[sctpHeaderLen:]
	c[0] = chunk
	binary.BigEndian.PutUint16(c[2:], uint16(4+body))
	binary.BigEndian.PutUint32(c[4:], initTag)
	binary.BigEndian.PutUint32(c[8:], 65535) // a_rwnd
	binary.BigEndian.PutUint16(c[12:], 1)    // outbound streams
	binary.BigEndian.PutUint16(c[14:], 1)    // inbound streams
	binary.BigEndian.PutUint32(c[16:], initTag)
	if chunk == sctpChunkInitAck {
		binary.BigEndian.PutUint16(c[20:], sctpCookieParam)
		binary.BigEndian.PutUint16(c[22:], 8)
	}
	// The CRC32c is computed with the field zero and stored least significant byte first, as
	// the kernel's sctp_compute_cksum does (RFC 9260 Appendix A).
	binary.LittleEndian.PutUint32(p[8:], crc32.Checksum(p, castagnoli))
	return p
}

// sctpChunk is what a probe or server reads of a packet: its ports, tag and first chunk.
type sctpChunk struct {
	srcPort, dstPort uint16
	vtag, initTag    uint32
	chunk            byte
}

// parseSCTP reads an SCTP packet (its IP header already removed) whose first chunk is an INIT
// or INIT ACK with a valid checksum; anything else is not for a probe or server here.
func parseSCTP(p []byte) (sctpChunk, bool) {
	if len(p) < sctpHeaderLen+20 {
		return sctpChunk{}, false
	}
	sum := binary.LittleEndian.Uint32(p[8:])
	zeroed := append([]byte(nil), p...)
	binary.LittleEndian.PutUint32(zeroed[8:], 0)
	if crc32.Checksum(zeroed, castagnoli) != sum {
		return sctpChunk{}, false
	}
	c := p[sctpHeaderLen:]
	return sctpChunk{
		srcPort: binary.BigEndian.Uint16(p[0:]), dstPort: binary.BigEndian.Uint16(p[2:]),
		vtag: binary.BigEndian.Uint32(p[4:]), chunk: c[0], initTag: binary.BigEndian.Uint32(c[4:]),
	}, c[0] == sctpChunkInit || c[0] == sctpChunkInitAck
}

// ServeSCTP answers every SCTP INIT sent to addr inside ns with an INIT ACK. A raw socket sees
// every SCTP packet to its address, so several servers on one address each answer only their
// port's.
func ServeSCTP(t testing.TB, ns, addr string) {
	t.Helper()
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port64, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	port := uint16(port64)
	var c *net.IPConn
	if err := namespace.Do(ns, func() (err error) {
		c, err = net.ListenIP("ip4:"+strconv.Itoa(ipProtoSCTP), &net.IPAddr{IP: net.ParseIP(host)})
		return err
	}); err != nil {
		t.Fatalf("listening for sctp on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			in, ok := parseSCTP(buf[:n])
			if !ok || in.chunk != sctpChunkInit || in.dstPort != port || in.vtag != 0 {
				continue
			}
			tag := rand.Uint32() | 1 //nolint:gosec // a tag tells associations apart; nothing here is secret
			_, _ = c.WriteTo(sctpPacket(in.dstPort, in.srcPort, in.initTag, sctpChunkInitAck, tag), from)
		}
	}()
}

// probeSCTP sends an INIT from inside ns (from src when not empty) to dst:port and reports
// whether the INIT ACK for it came back within timeout. A raw socket cannot tell a missing
// server from a drop (the kernel answers neither), so unlike TCP's refusal, a port nobody serves
// reads as dropped.
func probeSCTP(ns, src, dst string, dstPort int, timeout time.Duration) (bool, error) {
	if dstPort < 1 || dstPort > 65535 {
		return false, fmt.Errorf("sctp probe: port %d out of range", dstPort)
	}
	port := uint16(dstPort)
	dstIP := net.ParseIP(dst).To4()
	if dstIP == nil {
		return false, fmt.Errorf("sctp probe: %q is not an IPv4 address", dst)
	}
	var answered bool
	err := namespace.Do(ns, func() error {
		var local *net.IPAddr
		if src != "" {
			local = &net.IPAddr{IP: net.ParseIP(src)}
		}
		c, err := net.ListenIP("ip4:"+strconv.Itoa(ipProtoSCTP), local)
		if err != nil {
			return fmt.Errorf("sctp probe: %w", err)
		}
		defer func() { _ = c.Close() }()
		// Tags and ports tell concurrent probes apart; nothing here is secret.
		srcPort, tag := uint16(32768+rand.IntN(28000)), rand.Uint32()|1 //nolint:gosec
		if _, err := c.WriteTo(sctpPacket(srcPort, port, 0, sctpChunkInit, tag), &net.IPAddr{IP: dstIP}); err != nil {
			return fmt.Errorf("sctp probe: sending INIT: %w", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(timeout))
		answered, err = awaitInitAck(c, dstIP, port, srcPort, tag)
		return err
	})
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		return false, nil
	}
	return answered, err
}

// awaitInitAck reads c until the INIT ACK from dst:port to srcPort with tag arrives (true), or
// c's deadline passes (the timeout error). c sees every SCTP packet to its namespace.
func awaitInitAck(c *net.IPConn, dst net.IP, port, srcPort uint16, tag uint32) (bool, error) {
	buf := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return false, err
		}
		in, ok := parseSCTP(buf[:n])
		if ok && in.chunk == sctpChunkInitAck && in.vtag == tag && in.srcPort == port &&
			in.dstPort == srcPort && from.(*net.IPAddr).IP.Equal(dst) {
			return true, nil
		}
	}
}
