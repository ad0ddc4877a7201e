package kernel

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/testenv"
	"github.com/podsg/podsg/internal/vpc/rds"
	"github.com/podsg/podsg/internal/vpc/state"
)

// TestRDS: a PostgreSQL DB instance in the VPC answers psql from an
// instance its group allows and times out for one it does not.
func TestRDS(t *testing.T) {
	e := newEnv(t, state.Limits{})
	testenv.Require(t, testenv.PostgreSQL, testenv.PSQL)
	vpc := e.vpc("10.75.0.0/16")
	sub := e.subnet(vpc, "10.75.1.0/24")
	sgApp, sgOther, sgDB := e.group(vpc, "app"), e.group(vpc, "other"), e.group(vpc, "db")
	e.ingress(sgDB, "tcp", 5432, 5432, sgApp)
	app, _ := e.instance(sub, sgApp)
	other, _ := e.instance(sub, sgOther)

	dir, err := os.MkdirTemp("", "podsg-rds-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must reach its data
		t.Fatal(err)
	}
	m, err := rds.New(rds.Options{Store: e.store, Names: e.dp.names, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, err := m.Create(ctx, rds.CreateInput{ID: "db1", SubnetID: sub, SecurityGroupIDs: []string{sgDB},
		MasterUsername: "master", MasterPassword: "secret-pw", DBName: "app"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if _, err := m.Delete(context.Background(), "db1"); err != nil {
			t.Errorf("Delete: %v", err)
		}
	})
	if dbs, err := m.Describe(""); err != nil || len(dbs) != 1 || dbs[0].Status != rds.StatusAvailable {
		t.Fatalf("Describe = %+v, %v", dbs, err)
	}
	psql := func(instance string) (string, error) {
		cmd := exec.Command("psql", "-h", db.Address, "-U", "master", "-d", "app", "-tAc", "SHOW server_version")
		cmd.Env = append(os.Environ(), "PGPASSWORD=secret-pw", "PGCONNECT_TIMEOUT=2")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		err := e.dp.Exec(instance, cmd)
		return out.String(), err
	}
	out, err := psql(app)
	if err != nil || !strings.HasPrefix(out, "15.") {
		t.Errorf("psql from the allowed instance: %q, %v", out, err)
	}
	start := time.Now()
	out, err = psql(other)
	if err == nil || !strings.Contains(out, "timeout") {
		t.Errorf("psql from the denied instance: %q, %v (after %v); want a timeout", out, err, time.Since(start))
	}
}
