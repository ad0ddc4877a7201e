package pgcheck

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// ConnectTimeout is the tutorial's connect_timeout=3.
const ConnectTimeout = 3 * time.Second

// Config is what the tutorial's pod passes in its environment.
type Config struct {
	Host     string
	Port     int
	Database string
	User     string
	Password string
	// Auth is AuthPassword (the zero value too) or AuthIAM: Password is then ignored and an
	// auth token from the SDK's credentials is the password, as in postgres_test_iam.py.
	Auth Auth
}

// FromEnv reads HOST, PORT (default 5432), DATABASE, USER and PASSWORD through getenv.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		Host:     getenv("HOST"),
		Port:     5432,
		Database: getenv("DATABASE"),
		User:     getenv("USER"),
		Password: getenv("PASSWORD"),
	}
	if p := getenv("PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return Config{}, fmt.Errorf("parsing PORT %q: not a TCP port", p)
		}
		c.Port = port
	}
	return c, nil
}

// Run connects, queries the server version and writes one line to w: the version as a Python
// tuple, or "Database connection failed due to <reason>". Both are normal outcomes of the
// tutorial (it exits 0 either way), so Run returns an error only when w cannot be written or,
// with AuthIAM, when no token can be made: the script fails there too, before it connects.
func Run(ctx context.Context, c Config, w io.Writer) error {
	if c.Auth == AuthIAM {
		token, err := IAMToken(ctx, c)
		if err != nil {
			return err
		}
		c.Password = token
	}
	version, err := query(ctx, c)
	line := PyTuple(version)
	if err != nil {
		line = "Database connection failed due to " + Reason(c, err)
	}
	if _, err := fmt.Fprintln(w, line); err != nil {
		return fmt.Errorf("writing result: %w", err)
	}
	return nil
}

func query(ctx context.Context, c Config) (string, error) {
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		return "", fmt.Errorf("building connection config: %w", err)
	}
	cfg.Host, cfg.Port = c.Host, uint16(c.Port) //nolint:gosec // FromEnv bounds the port
	cfg.Database, cfg.User, cfg.Password = c.Database, c.User, c.Password
	cfg.ConnectTimeout = ConnectTimeout
	// ParseConfig("") may pick up PG* variables and fallbacks (e.g. a unix socket); the
	// tutorial talks to exactly one TCP host.
	cfg.Fallbacks = nil
	cfg.TLSConfig = nil
	// The timeout bounds the whole attempt, like libpq's connect_timeout for a single host.
	cctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	// libpq names the address a hostname resolved to in its messages, even when the server
	// itself answered (a PAM failure): remember it, as pgx's errors keep it only for dials.
	var resolved []string
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		resolved = addrs
		return addrs, err
	}
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		if len(resolved) == 1 {
			return "", &resolvedError{addr: resolved[0], err: err}
		}
		return "", err
	}
	defer func() { _ = conn.Close(context.WithoutCancel(ctx)) }()
	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		return "", err
	}
	return version, nil
}

// hostLabel is how libpq names the server in "connection to server at ..." messages: the
// address alone when HOST is an IP, the name and the address it resolved to otherwise.
func hostLabel(host, addr string) string {
	if net.ParseIP(host) != nil || addr == "" || addr == host {
		return strconv.Quote(host)
	}
	return strconv.Quote(host) + " (" + addr + ")"
}

// resolvedError is a connection error with the one address the hostname resolved to.
type resolvedError struct {
	addr string
	err  error
}

func (e *resolvedError) Error() string { return e.err.Error() }
func (e *resolvedError) Unwrap() error { return e.err }
