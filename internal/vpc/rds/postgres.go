package rds

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
)

func (m *Manager) dataDir(db *DBInstance) string { return filepath.Join(m.dir(db.ID), "data") }
func (m *Manager) sockDir(db *DBInstance) string { return filepath.Join(m.dir(db.ID), "run") }

// initdb creates the cluster as the postgres user: the master user is the
// superuser with the given password, local (socket) clients are trusted for
// our own setup steps; start writes how remote ones authenticate.
func (m *Manager) initdb(ctx context.Context, db *DBInstance, password string) error {
	u, err := user.Lookup(m.opts.User)
	if err != nil {
		return fmt.Errorf("looking up user %s: %w", m.opts.User, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// 0700, owned by postgres below: the socket is trust-authenticated, so no other local user
	// may reach it.
	for _, d := range []string{m.dir(db.ID), m.sockDir(db)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating %s: %w", d, err)
		}
		if err := os.Chown(d, uid, gid); err != nil {
			return fmt.Errorf("chowning %s: %w", d, err)
		}
	}
	pw := filepath.Join(m.dir(db.ID), "pwfile")
	if err := os.WriteFile(pw, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing password file: %w", err)
	}
	defer func() { _ = os.Remove(pw) }()
	if err := os.Chown(pw, uid, gid); err != nil {
		return fmt.Errorf("chowning password file: %w", err)
	}
	if out, err := m.asUser(ctx, filepath.Join(m.opts.BinDir, "initdb"), "-D", m.dataDir(db), "-U", db.MasterUsername,
		"--pwfile="+pw, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, out)
	}
	return nil
}

// start runs pg_ctl from inside the instance's namespace, so the server
// (a daemon that outlives this process) listens on the ENI's address.
func (m *Manager) start(ctx context.Context, db *DBInstance) error {
	// Rewritten before every start: the helper's path is this server's.
	if err := m.configureAuth(db); err != nil {
		return err
	}
	ns := m.opts.Names.RDS(db.ID)
	opts := fmt.Sprintf("-c listen_addresses=%s -c port=%d -c unix_socket_directories=%s", db.Address, db.Port, m.sockDir(db))
	cmd := m.asUser(ctx, filepath.Join(m.opts.BinDir, "pg_ctl"), "-D", m.dataDir(db), "-o", opts,
		"-l", filepath.Join(m.dir(db.ID), "postgres.log"), "-w", "-t", "30", "start")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := namespace.Start(ns, cmd); err != nil {
		return fmt.Errorf("starting postgres in %s: %w", ns, err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("pg_ctl start: %w: %s", err, out.String())
	}
	if err := m.psql(ctx, db, "postgres", createRDSIAM); err != nil {
		return fmt.Errorf("creating role rds_iam: %w", err)
	}
	if db.DBName != "" && db.DBName != "postgres" {
		psql := exec.CommandContext(ctx, filepath.Join(m.opts.BinDir, "psql"), "-h", m.sockDir(db), "-p", strconv.Itoa(db.Port),
			"-U", db.MasterUsername, "-d", "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname = '"+db.DBName+"'")
		if b, err := psql.Output(); err == nil && strings.TrimSpace(string(b)) != "1" {
			create := exec.CommandContext(ctx, filepath.Join(m.opts.BinDir, "createdb"), "-h", m.sockDir(db), "-p", strconv.Itoa(db.Port),
				"-U", db.MasterUsername, db.DBName)
			if out, err := create.CombinedOutput(); err != nil {
				return fmt.Errorf("createdb %s: %w: %s", db.DBName, err, out)
			}
		}
	}
	return nil
}

// createRDSIAM creates the role that marks users who log in with IAM connect tokens, as RDS
// has it: GRANT rds_iam TO user.
const createRDSIAM = `DO $$ BEGIN CREATE ROLE rds_iam; EXCEPTION WHEN duplicate_object THEN NULL; END $$`

// psql runs sql as the master user over the instance's (trusted) socket.
func (m *Manager) psql(ctx context.Context, db *DBInstance, dbname, sql string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(m.opts.BinDir, "psql"), "-h", m.sockDir(db), "-p", strconv.Itoa(db.Port),
		"-U", db.MasterUsername, "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qc", sql)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

func (m *Manager) stop(ctx context.Context, db *DBInstance) error {
	out, err := m.asUser(ctx, filepath.Join(m.opts.BinDir, "pg_ctl"), "-D", m.dataDir(db), "-m", "fast", "-w", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, out)
	}
	return nil
}

func (m *Manager) running(ctx context.Context, db *DBInstance) bool {
	return m.asUser(ctx, filepath.Join(m.opts.BinDir, "pg_ctl"), "-D", m.dataDir(db), "status").Run() == nil
}

func (m *Manager) asUser(ctx context.Context, bin string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "runuser", append([]string{"-u", m.opts.User, "--", bin}, args...)...)
}
