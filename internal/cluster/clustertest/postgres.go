package clustertest

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/podsg/podsg/internal/pginstall"
	"github.com/podsg/podsg/internal/testenv"
)

// Postgres is a throwaway PostgreSQL server with trust authentication: any password works for
// user postgres, which is what the tutorial's IAM token becomes locally.
type Postgres struct {
	Addr string
	Port int
	Dir  string
}

// StartPostgres runs a PostgreSQL server listening on addr:port inside the named namespace (""
// for the root namespace). It is stopped and its directory removed on cleanup.
func StartPostgres(t testing.TB, netns, addr string, port int) *Postgres {
	t.Helper()
	testenv.Require(t, testenv.PostgreSQL)
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: its parents are private to root, and the server runs as postgres.
	dir, err := os.MkdirTemp("", "podsg-pg-")
	if err != nil {
		t.Fatalf("creating postgres dir: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatalf("chowning postgres dir: %v", err)
	}
	data := filepath.Join(dir, "data")
	asPostgres(t, "", "initdb", "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
	// initdb trusts only loopback; the tutorial's pod connects from the pod network.
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = hba.WriteString("host all all 0.0.0.0/0 trust\n")
		_ = hba.Close()
	}
	if err != nil {
		t.Fatalf("opening pg_hba.conf to the network: %v", err)
	}
	opts := "-c listen_addresses=" + addr + " -p " + strconv.Itoa(port) + " -c unix_socket_directories=" + dir + " -c fsync=off"
	asPostgres(t, netns, "pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "start")
	t.Cleanup(func() {
		// The postmaster's pid file lets pg_ctl signal it from any namespace.
		cmd := exec.Command("runuser", "-u", "postgres", "--", pginstall.Bin("pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stopping postgres: %v\n%s", err, out)
		}
	})
	return &Postgres{Addr: addr, Port: port, Dir: dir}
}

func asPostgres(t testing.TB, netns, bin string, args ...string) {
	t.Helper()
	InNetns(t, netns, "runuser", append([]string{"-u", "postgres", "--", pginstall.Bin(bin)}, args...)...)
}
