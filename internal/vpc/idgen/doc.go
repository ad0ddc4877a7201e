// Package idgen owns identifier generation: the hex suffixes of resource ids
// (eni-0123456789abcdef0), MAC addresses and request ids. Production uses
// crypto/rand; tests inject a deterministic source.
package idgen
