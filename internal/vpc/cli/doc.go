// Package cli owns the podsg-vpc command line: the cobra command tree
// ("serve" today; "exec", "cleanup" and "flows" will join it) and the wiring
// of state, data path, handlers and HTTP server behind each command.
package cli
