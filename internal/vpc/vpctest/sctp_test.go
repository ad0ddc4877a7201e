package vpctest

import (
	"encoding/hex"
	"testing"
)

// The kernel's conntrack checks an SCTP packet's CRC32c and calls a bad one invalid, which the
// node's rules drop, so a wrong checksum would make every SCTP probe read "dropped". The
// expected bytes were checked against the kernel: TestCompiledRulesMatchTheEvaluator's allowed
// SCTP flows pass with them and fail with the checksum's bytes swapped.
func TestSCTPPacket(t *testing.T) {
	p := sctpPacket(40000, 7777, 0, sctpChunkInit, 0x01020304)
	const want = "9c401e6100000000" + "db68d591" + "01000014" + "01020304" + "0000ffff" + "00010001" + "01020304"
	if got := hex.EncodeToString(p); got != want {
		t.Errorf("INIT:\n got %s\nwant %s", got, want)
	}
	c, ok := parseSCTP(p)
	if !ok || c != (sctpChunk{srcPort: 40000, dstPort: 7777, vtag: 0, initTag: 0x01020304, chunk: sctpChunkInit}) {
		t.Errorf("parse INIT: %+v, %v", c, ok)
	}
	ack := sctpPacket(7777, 40000, 0x01020304, sctpChunkInitAck, 5)
	if c, ok := parseSCTP(ack); !ok || c.chunk != sctpChunkInitAck || c.vtag != 0x01020304 || len(ack) != 12+28 {
		t.Errorf("parse INIT ACK: %+v, %v, %d bytes", c, ok, len(ack))
	}
	ack[len(ack)-1] ^= 1
	if _, ok := parseSCTP(ack); ok {
		t.Error("a packet with a bad checksum was read")
	}
	if _, ok := parseSCTP(p[:20]); ok {
		t.Error("a short packet was read")
	}
}
