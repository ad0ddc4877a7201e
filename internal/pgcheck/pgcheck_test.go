package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestFromEnv(t *testing.T) {
	env := map[string]string{"HOST": "db", "DATABASE": "d", "USER": "u", "PASSWORD": "p"}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil || c != (Config{Host: "db", Port: 5432, Database: "d", User: "u", Password: "p"}) {
		t.Fatalf("FromEnv = %+v, %v", c, err)
	}
	env["PORT"] = "6543"
	if c, _ := FromEnv(func(k string) string { return env[k] }); c.Port != 6543 {
		t.Fatalf("PORT ignored: %+v", c)
	}
	env["PORT"] = "x"
	if _, err := FromEnv(func(k string) string { return env[k] }); err == nil {
		t.Fatal("bad PORT accepted")
	}
}

func TestPyTuple(t *testing.T) {
	for in, want := range map[string]string{
		"PostgreSQL 15.8 on x86_64-pc-linux-gnu, 64-bit": "('PostgreSQL 15.8 on x86_64-pc-linux-gnu, 64-bit',)",
		`it's`:         `("it's",)`,
		`it's "x"`:     `('it\'s "x"',)`,
		"a\\b\n\t\x01": `('a\\b\n\t\x01',)`,
		"":             "('',)",
	} {
		if got := PyTuple(in); got != want {
			t.Errorf("PyTuple(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestReason(t *testing.T) {
	ip := &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 5432}
	dial := func(errno error) error {
		return fmt.Errorf("failed to connect: %w", &net.OpError{Op: "dial", Net: "tcp", Addr: ip, Err: errno})
	}
	byIP := Config{Host: "10.0.0.5", Port: 5432}
	byName := Config{Host: "db.local", Port: 5432}
	hint := "\n\tIs the server running on that host and accepting TCP/IP connections?"
	for name, tc := range map[string]struct {
		c    Config
		err  error
		want string
	}{
		"context deadline": {byIP, fmt.Errorf("connect: %w", context.DeadlineExceeded), "timeout expired"},
		"dial i/o timeout": {byIP, &net.OpError{Op: "dial", Err: timeoutErr{}}, "timeout expired"},
		"refused by ip":    {byIP, dial(syscall.ECONNREFUSED), `connection to server at "10.0.0.5", port 5432 failed: Connection refused` + hint},
		"refused by name":  {byName, dial(syscall.ECONNREFUSED), `connection to server at "db.local" (10.0.0.5), port 5432 failed: Connection refused` + hint},
		"no route":         {byIP, dial(syscall.EHOSTUNREACH), `connection to server at "10.0.0.5", port 5432 failed: No route to host` + hint},
		"fatal": {byIP, &pgconn.PgError{Severity: "FATAL", Message: `password authentication failed for user "u"`},
			`connection to server at "10.0.0.5", port 5432 failed: FATAL:  password authentication failed for user "u"`},
		"unknown host": {byName, &net.DNSError{Err: "no such host", Name: "db.local", IsNotFound: true},
			`could not translate host name "db.local" to address: Name or service not known`},
		"other": {byIP, fmt.Errorf("outer: %w", errors.New("server closed the connection")),
			`connection to server at "10.0.0.5", port 5432 failed: server closed the connection`},
	} {
		t.Run(name, func(t *testing.T) {
			if got := Reason(tc.c, tc.err); got != tc.want {
				t.Errorf("Reason =\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }
