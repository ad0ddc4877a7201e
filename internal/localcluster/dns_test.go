package localcluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/testenv"
)

// TestVPCResolver runs the real coredns with the VPC resolver's Corefile on loopback: an
// instance's private DNS name resolves to its address (and has no IPv6 address, which is
// not the same as not existing), any other name does not exist.
func TestVPCResolver(t *testing.T) {
	bin := filepath.Join(testenv.KubeBinDir(t), "coredns")
	port := testenv.FreePort(t)
	conf := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(conf, []byte(resolverCorefile("127.0.0.1", port)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.StartProcess(t, bin, "-conf", conf); err != nil {
		t.Fatal(err)
	}
	server := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	node := "ip-10-0-32-4." + Region + ".compute.internal"
	testenv.Eventually(t, 30*time.Second, func(ctx context.Context) error {
		_, _, err := dnsQuery(ctx, server, node, typeA)
		return err
	})
	for _, tc := range []struct {
		name      string
		qtype     uint16
		rcode     int
		answers   int
		addressIs string
	}{
		{node, typeA, rcodeNoError, 1, "10.0.32.4"},
		{node, typeAAAA, rcodeNoError, 0, ""},
		{"ip-10-0-0-5.eu-west-1.compute.internal", typeA, rcodeNXDomain, 0, ""},
		{"mydb.abc.us-west-2.rds.amazonaws.com", typeA, rcodeNXDomain, 0, ""},
		{"example.com", typeAAAA, rcodeNXDomain, 0, ""},
	} {
		rcode, addrs, err := dnsQuery(t.Context(), server, tc.name, tc.qtype)
		if err != nil {
			t.Errorf("%s type %d: %v", tc.name, tc.qtype, err)
			continue
		}
		if rcode != tc.rcode || len(addrs) != tc.answers || (tc.addressIs != "" && addrs[0] != tc.addressIs) {
			t.Errorf("%s type %d: rcode %d, answers %v; want rcode %d, %d answers %s", tc.name, tc.qtype, rcode, addrs, tc.rcode, tc.answers, tc.addressIs)
		}
	}
}

const (
	typeA         = 1
	typeAAAA      = 28
	rcodeNoError  = 0
	rcodeNXDomain = 3
)

// dnsQuery asks server one question over UDP and returns the response code and the A
// records' addresses of the answer section (other records as their type).
func dnsQuery(ctx context.Context, server, name string, qtype uint16) (int, []string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", server)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = conn.Close() }()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	msg := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0} // id, RD, one question
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		msg = append(append(msg, byte(len(label))), label...)
	}
	msg = binary.BigEndian.AppendUint16(append(msg, 0), qtype)
	msg = binary.BigEndian.AppendUint16(msg, 1) // IN
	if _, err := conn.Write(msg); err != nil {
		return 0, nil, err
	}
	buf := make([]byte, 1500)
	n, err := conn.Read(buf)
	if err != nil {
		return 0, nil, err
	}
	return parseAnswers(buf[:n], len(msg))
}

// parseAnswers reads the header and the answer records of a response to a one-question query
// of qlen bytes (the question is echoed, so the answers start at qlen).
func parseAnswers(resp []byte, qlen int) (int, []string, error) {
	if len(resp) < qlen || resp[0] != 0x12 || resp[1] != 0x34 {
		return 0, nil, fmt.Errorf("not a response to the query: % x", resp)
	}
	rcode, count := int(resp[3]&0x0f), int(binary.BigEndian.Uint16(resp[6:8]))
	var out []string
	for off, i := qlen, 0; i < count; i++ {
		off = skipName(resp, off)
		if off < 0 || off+10 > len(resp) {
			return 0, nil, fmt.Errorf("answer %d: truncated: % x", i, resp)
		}
		typ, rdlen := binary.BigEndian.Uint16(resp[off:]), int(binary.BigEndian.Uint16(resp[off+8:]))
		rdata := resp[off+10 : min(off+10+rdlen, len(resp))]
		if typ == typeA && len(rdata) == 4 {
			out = append(out, net.IP(rdata).String())
		} else {
			out = append(out, fmt.Sprintf("type %d", typ))
		}
		off += 10 + rdlen
	}
	return rcode, out, nil
}

// skipName returns the offset after the name at off: labels up to the root, or up to a
// compression pointer; -1 if the message ends first.
func skipName(msg []byte, off int) int {
	for off < len(msg) {
		switch l := int(msg[off]); {
		case l == 0:
			return off + 1
		case l&0xc0 == 0xc0:
			return off + 2
		default:
			off += 1 + l
		}
	}
	return -1
}
