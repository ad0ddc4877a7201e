package rds

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/vpc/rdsiam"
)

// IAM database authentication runs through PostgreSQL's own PAM path, so that every failure
// reads exactly as on RDS: FATAL: PAM authentication failed for user "…". pg_hba.conf sends
// users granted rds_iam to PAM with a service of this instance; that service runs pam_script
// (Debian's libpam-script), which runs the instance's pam_script_auth with the password the
// client sent (the token) in PAM_AUTHTOK; that script runs the podsg-vpc helper
// (`podsg-vpc rds-iam-auth`), which asks the server over a Unix socket (reachable from the
// database's network namespace, unlike the server's TCP port); the server checks the token
// with rdsiam. PAM modules cannot be written in Go, and PostgreSQL has no other hook that
// yields that message, hence a helper. Not pam_exec: it cuts the token it hands over at 512
// bytes (PAM_MAX_RESP_SIZE), and a token made with temporary credentials is longer.

// PAMScript is the PAM module that runs the helper.
const PAMScript = "/lib/x86_64-linux-gnu/security/pam_script.so"

// TokenChecker checks a connect token for a database user (rdsiam.Checker).
type TokenChecker interface {
	Check(token string, target rdsiam.Target) error
}

// ErrIAMAuthUnavailable is EnableIAMDatabaseAuthentication on a server that cannot check tokens.
var ErrIAMAuthUnavailable = errors.New("IAM database authentication is not available on this server")

// pamDir is where Linux-PAM reads service files: it reads no other directory.
const pamDir = "/etc/pam.d"

// authSocket is the helper's Unix socket, in Options.Dir (searchable by the postgres user).
func (m *Manager) authSocket() string { return filepath.Join(m.opts.Dir, "iam-auth.sock") }

// pamService names the PAM service of db: unique per server (its namespace prefix) and instance.
func (m *Manager) pamService(db *DBInstance) string {
	return m.opts.Names.Prefix() + "rds-" + db.ID
}

// scriptDir holds db's pam_script_auth, the script pam_script runs.
func (m *Manager) scriptDir(db *DBInstance) string { return filepath.Join(m.dir(db.ID), "pam") }

// writePAMService writes db's PAM service file and the script it runs: the helper, told
// where the server is and which database this is; account management has nothing to check.
func (m *Manager) writePAMService(db *DBInstance) error {
	if err := m.iamAuthReady(); err != nil {
		return err
	}
	script := fmt.Sprintf("#!/bin/sh\n# Run by pam_script for DB instance %s: the token is in PAM_AUTHTOK.\nexec %s rds-iam-auth --socket %s --db %s\n",
		db.ID, m.helper, m.authSocket(), db.ID)
	if err := os.MkdirAll(m.scriptDir(db), 0o755); err != nil { //nolint:gosec // pam_script runs it as postgres
		return fmt.Errorf("creating %s: %w", m.scriptDir(db), err)
	}
	// Executable by the postgres user, whose backends run it.
	if err := os.WriteFile(filepath.Join(m.scriptDir(db), "pam_script_auth"), []byte(script), 0o755); err != nil {
		return fmt.Errorf("writing the PAM script of %s: %w", db.ID, err)
	}
	conf := fmt.Sprintf("# Written by podsg-vpc for DB instance %s; removed with it.\n"+
		"auth required pam_script.so onerr=fail dir=%s\n"+
		"account required pam_permit.so\n", db.ID, m.scriptDir(db))
	// World-readable, as every file in /etc/pam.d.
	if err := os.WriteFile(filepath.Join(pamDir, m.pamService(db)), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("writing the PAM service of %s: %w", db.ID, err)
	}
	return nil
}

// RemovePAMServices removes the PAM service files of every database of the server whose
// kernel objects are named with prefix (topo.Names.Prefix): for `podsg-vpc cleanup`, after a
// server that cannot delete its databases any more.
func RemovePAMServices(prefix string) error { return removePAMServices(pamDir, prefix) }

func removePAMServices(dir, prefix string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix+"rds-") {
			errs = append(errs, os.Remove(filepath.Join(dir, e.Name())))
		}
	}
	return errors.Join(errs...)
}

// iamAuthReady says why this server cannot turn IAM database authentication on, if it cannot.
func (m *Manager) iamAuthReady() error {
	if m.opts.Tokens == nil {
		return ErrIAMAuthUnavailable
	}
	if _, err := os.Stat(PAMScript); err != nil {
		return fmt.Errorf("%w: it needs %s (Debian package libpam-script)", ErrIAMAuthUnavailable, PAMScript)
	}
	return pamSafe(m.opts.Dir)
}

// pamSafe refuses a directory that the PAM service line and the script, which name paths in
// it unquoted, could not carry.
func pamSafe(dir string) error {
	if strings.ContainsAny(dir, " \t\n'\"\\$`[]") {
		return fmt.Errorf("%w: the state dir %q has a space or a character PAM or sh would read", ErrIAMAuthUnavailable, dir)
	}
	return nil
}

func (m *Manager) removePAMService(db *DBInstance) error {
	if err := os.Remove(filepath.Join(pamDir, m.pamService(db))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the PAM service of %s: %w", db.ID, err)
	}
	return nil
}

// authRequest is what the helper sends over the socket, one JSON line; the answer is "ok" or
// "denied".
type authRequest struct {
	DB    string `json:"db"`
	User  string `json:"user"`
	Token string `json:"token"`
}

// serveAuth answers the helpers until l is closed.
func (m *Manager) serveAuth(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go m.answer(c)
	}
}

func (m *Manager) answer(c net.Conn) {
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req authRequest
	line, err := bufio.NewReader(io.LimitReader(c, 64<<10)).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err == nil {
		err = m.checkToken(req)
	}
	verdict, result := "ok\n", resultAccepted
	if err != nil {
		m.log.Info("IAM database authentication failed", "db", req.DB, "user", req.User, "reason", err.Error())
		verdict, result = "denied\n", resultRefused
	}
	m.authN.WithLabelValues(result).Inc()
	_, _ = io.WriteString(c, verdict)
}

func (m *Manager) checkToken(req authRequest) error {
	db, err := m.load(req.DB)
	if err != nil {
		return err
	}
	if !db.IAMAuth {
		return fmt.Errorf("IAM database authentication is disabled on %s", db.ID)
	}
	return m.opts.Tokens.Check(req.Token, rdsiam.Target{Host: db.Hostname, Port: db.Port, ResourceID: db.ResourceID, User: req.User})
}

// listenAuth starts the helpers' socket, owned by the postgres user (PostgreSQL's backends run
// the helper) and no one else's to connect to.
func (m *Manager) listenAuth(uid, gid int) (net.Listener, error) {
	_ = os.Remove(m.authSocket()) // left by a server that was killed
	l, err := net.Listen("unix", m.authSocket())
	if err != nil {
		return nil, fmt.Errorf("listening for IAM authentication: %w", err)
	}
	err = os.Chown(m.authSocket(), uid, gid)
	if err == nil {
		err = os.Chmod(m.authSocket(), 0o600)
	}
	if err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("securing %s: %w", m.authSocket(), err)
	}
	go m.serveAuth(l)
	return l, nil
}

// AuthHelper is `podsg-vpc rds-iam-auth`: it asks the server at socket whether the token in
// PAM_AUTHTOK lets PAM_USER into db, and returns nil only when it does.
func AuthHelper(ctx context.Context, socket, db string, getenv func(string) string) error {
	req, _ := json.Marshal(authRequest{DB: db, User: getenv("PAM_USER"), Token: getenv("PAM_AUTHTOK")})
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return fmt.Errorf("reaching podsg-vpc: %w", err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("asking podsg-vpc: %w", err)
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading podsg-vpc's answer: %w", err)
	}
	if answer != "ok\n" {
		return errors.New("denied")
	}
	return nil
}

// Results of an IAM authentication, the label of the metric.
const (
	resultAccepted = "accepted"
	resultRefused  = "refused"
)

// newAuthMetric counts token checks by result: refusals are what an operator looks for when
// clients report PAM failures (the reason is in the log).
func newAuthMetric() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "podsg", Subsystem: "vpc", Name: "rds_iam_authentications_total",
		Help: "RDS IAM database authentication token checks, by result (accepted or refused).",
	}, []string{"result"})
}

// quietLog is the default log: a nil logr.Logger would panic.
var quietLog = logr.Discard()

// startIAMAuth copies the helper where the postgres user can run it and opens its socket.
func (m *Manager) startIAMAuth() error {
	src := m.opts.Helper
	if src == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the rds-iam-auth helper: %w", err)
		}
		src = exe
	}
	u, err := user.Lookup(m.opts.User)
	if err != nil {
		return fmt.Errorf("looking up user %s: %w", m.opts.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	m.helper = filepath.Join(m.opts.Dir, "rds-iam-auth")
	if err := copyExecutable(src, m.helper); err != nil {
		return err
	}
	m.auth, err = m.listenAuth(uid, gid)
	return err
}

// copyExecutable copies src to dst (replaced atomically, so a helper running meanwhile is
// unaffected), mode 0755: the postgres user runs it.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("opening the helper: %w", err)
	}
	defer func() { _ = in.Close() }()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755) //nolint:gosec // executable by postgres, see above
	if err != nil {
		return fmt.Errorf("copying the helper: %w", err)
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		return fmt.Errorf("copying the helper to %s: %w", dst, err)
	}
	return nil
}
