// Package vpccmd owns the podsg-vpc command line: the cobra command tree
// (serve, cleanup, exec, flows) and the wiring of state, data path, handlers
// and HTTP server behind each command.
//
// The name is the binary's (podsg-vpc) plus "cmd", so that it is not a second
// package "cli" beside internal/cli, which is the podsg command line; a plain
// "command" would read like cobra's own type.
package vpccmd
