package rds

import (
	"crypto/sha256"
	"encoding/base32"

	"github.com/podsg/podsg/internal/vpc/idgen"
)

// resourceIDLen is the length of a DbiResourceId after "db-": 26 characters of base32, as RDS's.
const resourceIDLen = 26

// newResourceID returns a fresh DbiResourceId ("db-" and 26 upper-case letters and digits).
func newResourceID(src idgen.Source) string {
	b := make([]byte, 16)
	src.Read(b)
	return "db-" + base32.StdEncoding.EncodeToString(b)[:resourceIDLen]
}

// legacyResourceID is the DbiResourceId of an instance saved without one.
func legacyResourceID(db *DBInstance) string {
	sum := sha256.Sum256([]byte(db.ID + "|" + db.CreatedAt.UTC().Format("2006-01-02T15:04:05.999999999Z")))
	return "db-" + base32.StdEncoding.EncodeToString(sum[:])[:resourceIDLen]
}
