// Package pginstall says where this machine's PostgreSQL server is installed: Debian 12's
// postgresql package (postgresql-15), which hack/packages.txt lists. The local RDS runs it and
// tests start it, so the path is written once, here.
//
// It is a leaf package (no imports beyond the standard library) so that internal/testenv can
// name the files a test needs without importing internal/vpc/rds, whose own tests may one day
// import testenv.
package pginstall

import "path/filepath"

// Major is the PostgreSQL major version Debian 12 ships; the local RDS reports it as the
// instance's EngineVersion.
const Major = "15"

// BinDir holds the server binaries (initdb, pg_ctl, postgres). Debian keeps them out of PATH,
// under one directory per major version, so they are always called by this path.
const BinDir = "/usr/lib/postgresql/" + Major + "/bin"

// Bin returns the path of the server binary name (e.g. "initdb").
func Bin(name string) string { return filepath.Join(BinDir, name) }
