// Package version reports the build's version, set at link time with
// -ldflags "-X github.com/podsg/podsg/internal/version.Version=v0.1.0".
package version

// Version is the release of this build; "dev" for a plain `go build`.
var Version = "dev"
