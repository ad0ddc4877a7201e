package pgcheck_test

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/podsg/podsg/internal/cluster/clustertest"
	"github.com/podsg/podsg/internal/pgcheck"
	"github.com/podsg/podsg/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.Main(m)
}

// TestAgainstPostgres talks to a real PostgreSQL 15 on loopback: the success line and the
// server's own FATAL wording.
func TestAgainstPostgres(t *testing.T) {
	testenv.RequireRoot(t)
	port := testenv.FreePort(t)
	clustertest.StartPostgres(t, "", "127.0.0.1", port)
	run := func(c pgcheck.Config) string {
		var out bytes.Buffer
		if err := pgcheck.Run(t.Context(), c, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	c := pgcheck.Config{Host: "127.0.0.1", Port: port, Database: "postgres", User: "postgres", Password: "token"}
	if got := run(c); !regexp.MustCompile(`^\('PostgreSQL 15\.\d+ .* on .*, 64-bit',\)\n$`).MatchString(got) {
		t.Errorf("version line = %q", got)
	}
	c.Database = "nope"
	want := "Database connection failed due to connection to server at \"127.0.0.1\", port " + strconv.Itoa(port) +
		" failed: FATAL:  database \"nope\" does not exist\n"
	if got := run(c); got != want {
		t.Errorf("missing database: got %q, want %q", got, want)
	}
}

// TestTimeoutAgainstBlackHole runs the real binary in a namespace whose route to the database
// ends in a second namespace that silently drops the packets (it does not forward), the way a
// security group drops them: the tutorial's exact line after about 3 s.
func TestTimeoutAgainstBlackHole(t *testing.T) {
	testenv.RequireRoot(t)
	bin := testenv.Build(t, "github.com/podsg/podsg/cmd/pgcheck")
	s := clustertest.Suffix(t)
	client, hole := "pgc-c-"+s, "pgc-h-"+s
	clustertest.Netns(t, client)
	clustertest.Netns(t, hole)
	clustertest.Veth(t, clustertest.End{Netns: client, Name: "eth0", CIDR: "10.231.0.1/30"},
		clustertest.End{Netns: hole, Name: "eth0", CIDR: "10.231.0.2/30"})
	clustertest.InNetns(t, client, "ip", "route", "add", "10.231.9.0/24", "via", "10.231.0.2")
	if dev := clustertest.RouteVia(t, client, "10.231.9.9"); dev != "eth0" {
		t.Fatalf("route to the black hole leaves via %s", dev)
	}
	cmd := exec.Command("ip", "netns", "exec", client, bin)
	cmd.Env = append(os.Environ(), "HOST=10.231.9.9", "DATABASE=postgres", "USER=postgres", "PASSWORD=x")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("pgcheck exited non-zero: %v\n%s", err, out)
	}
	if got := strings.TrimSuffix(string(out), "\n"); got != "Database connection failed due to timeout expired" {
		t.Errorf("output = %q", got)
	}
	if elapsed < pgcheck.ConnectTimeout || elapsed > pgcheck.ConnectTimeout+2*time.Second {
		t.Errorf("took %v, want about %v", elapsed, pgcheck.ConnectTimeout)
	}
}
