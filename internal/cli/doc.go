// Package cli is the `podsg` command line: local cluster up/down, demo, explain, reach, cleanup,
// images. Each verb lives in its own file; output goes to the injected writers, never to
// os.Stdout directly, so that commands are testable.
package cli
