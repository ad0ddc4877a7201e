package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Reason renders err the way psycopg2 prints libpq's message, so the pod's log matches the
// tutorial: a timeout is exactly "timeout expired"; other failures keep libpq's shape
// (`connection to server at "h", port p failed: ...`) without its trailing newline.
func Reason(c Config, err error) string {
	if isTimeout(err) {
		return "timeout expired"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && !dnsErr.IsTimeout {
		return fmt.Sprintf("could not translate host name %q to address: Name or service not known", c.Host)
	}
	prefix := fmt.Sprintf("connection to server at %s, port %d failed: ", hostLabel(c.Host, remoteAddr(err)), c.Port)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr):
		// libpq puts two spaces after the severity.
		return prefix + pgErr.Severity + ":  " + pgErr.Message
	case errors.Is(err, syscall.ECONNREFUSED):
		return prefix + "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return prefix + "No route to host\n\tIs the server running on that host and accepting TCP/IP connections?"
	case errors.Is(err, syscall.ENETUNREACH):
		return prefix + "Network is unreachable\n\tIs the server running on that host and accepting TCP/IP connections?"
	}
	// Anything else: pgx's innermost message is the most specific one.
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		err = u
	}
	return prefix + strings.TrimSpace(err.Error())
}

// isTimeout covers the ways a connect timeout surfaces from pgx: the context deadline, or a
// dial/read that hit its deadline.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// remoteAddr digs the dialled address out of a *net.OpError, if there is one, else the
// address the hostname resolved to.
func remoteAddr(err error) string {
	var opErr *net.OpError
	var res *resolvedError
	if !errors.As(err, &opErr) && errors.As(err, &res) {
		return res.addr
	}
	if errors.As(err, &opErr) && opErr.Addr != nil {
		if tcp, ok := opErr.Addr.(*net.TCPAddr); ok {
			return tcp.IP.String()
		}
	}
	return ""
}
