package rds

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// hbaMarker starts the part of pg_hba.conf that podsg-vpc rewrites; initdb's lines above it
// (local connections) stay as initdb wrote them.
const hbaMarker = "# podsg-vpc: managed below, rewritten on every change\n"

// legacyHBA is the one line instances created before the marker had after initdb's.
const legacyHBA = "host all all 0.0.0.0/0 scram-sha-256\n"

// writeHBA rewrites db's client authentication: security groups decide who reaches the
// server, as on RDS; with IAM authentication on, users granted rds_iam go to PAM (and so
// only log in with a connect token), everyone else logs in with a password.
func (m *Manager) writeHBA(db *DBInstance) error {
	path := filepath.Join(m.dataDir(db), "pg_hba.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading pg_hba.conf: %w", err)
	}
	service := ""
	if db.IAMAuth {
		service = m.pamService(db)
	}
	if err := os.WriteFile(path, []byte(renderHBA(string(b), service)), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	return nil
}

// renderHBA is pg_hba.conf with its managed part rewritten; pamService is "" when IAM
// authentication is off.
func renderHBA(current, pamService string) string {
	head, _, found := strings.Cut(current, hbaMarker)
	if !found {
		head = strings.TrimSuffix(head, legacyHBA)
	}
	managed := hbaMarker
	if pamService != "" {
		managed += fmt.Sprintf("host all +rds_iam 0.0.0.0/0 pam pamservice=%s\n", pamService)
	}
	return head + managed + legacyHBA
}

// configureAuth writes db's PAM service (or removes it) and its pg_hba.conf.
func (m *Manager) configureAuth(db *DBInstance) error {
	if !db.IAMAuth {
		if err := m.removePAMService(db); err != nil {
			return err
		}
		return m.writeHBA(db)
	}
	if err := m.writePAMService(db); err != nil {
		return err
	}
	return m.writeHBA(db)
}

// applyAuth configures a running server's authentication and makes it reread pg_hba.conf.
func (m *Manager) applyAuth(ctx context.Context, db *DBInstance) error {
	if err := m.configureAuth(db); err != nil {
		return err
	}
	if out, err := m.asUser(ctx, filepath.Join(m.opts.BinDir, "pg_ctl"), "-D", m.dataDir(db), "reload").CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl reload: %w: %s", err, out)
	}
	return nil
}
