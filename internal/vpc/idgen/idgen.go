package idgen

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"sync"
)

// Source produces random bytes for identifiers.
type Source interface {
	// Read fills b; it never fails.
	Read(b []byte)
}

// Crypto is the production source.
type Crypto struct{}

// Read implements Source.
func (Crypto) Read(b []byte) {
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(b)
}

// Seeded is a deterministic source for tests; it is safe for concurrent use.
type Seeded struct {
	mu  sync.Mutex
	rng *mrand.ChaCha8
}

// NewSeeded returns a deterministic source.
func NewSeeded(seed uint64) *Seeded {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &Seeded{rng: mrand.NewChaCha8(s)}
}

// Read implements Source.
func (s *Seeded) Read(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _ = s.rng.Read(b)
}

// Hex returns n lowercase hex digits.
func Hex(src Source, n int) string {
	b := make([]byte, (n+1)/2)
	src.Read(b)
	return hex.EncodeToString(b)[:n]
}

// ID returns an EC2-style id: prefix, a dash and 17 hex digits.
func ID(src Source, prefix string) string {
	return prefix + "-" + Hex(src, 17)
}

// MAC returns a locally administered unicast MAC ("02:…") like EC2 uses.
func MAC(src Source) string {
	b := make([]byte, 5)
	src.Read(b)
	return fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4])
}

// UUID returns a version-4 UUID string, the shape of EC2 request ids.
func UUID(src Source) string {
	b := make([]byte, 16)
	src.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
