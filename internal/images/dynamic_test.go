package images

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/podsg/podsg/internal/testenv"
)

func TestParseLDD(t *testing.T) {
	out := `	linux-vdso.so.1 (0x00007ffc1a5f2000)
	libnftables.so.1 => /lib/x86_64-linux-gnu/libnftables.so.1 (0x00007f0d3c2a4000)
	libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0d3c0c3000)
	/lib64/ld-linux-x86-64.so.2 (0x00007f0d3c3a9000)
`
	got, err := parseLDD([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/lib/x86_64-linux-gnu/libnftables.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseLDD = %q, want %q", got, want)
	}
	if _, err := parseLDD([]byte("\tlibgone.so.3 => not found\n")); err == nil || !strings.Contains(err.Error(), "libgone.so.3") {
		t.Errorf("a missing library: err %v, want one naming libgone.so.3", err)
	}
}

// TestAgentImageRunsNFT unpacks the agent image as a runtime would and runs its nft, with no
// file of the host, in network, mount and pid namespaces of its own: the script exercises what the agent's
// rulesets use (an inet table, named counters, conntrack state, interface name wildcards), and
// a JSON listing the libjansson that the agent's counter reads (-j) need.
func TestAgentImageRunsNFT(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.Require(t, testenv.NFTables)
	nft, err := DynamicFiles(NFTBin, AgentNFT)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	agent, cni, ca := fakeFile(t, dir, "podsg-agent", "agent"), fakeFile(t, dir, "podsg-cni", "cni"), fakeFile(t, dir, "ca.crt", "roots")
	var archive bytes.Buffer
	if err := WriteArchive(&archive, AgentImage(agent, cni, ca, nft)); err != nil {
		t.Fatal(err)
	}
	u := unpack(t, &archive)
	root := t.TempDir()
	for p, h := range u.headers {
		dst := filepath.Join(root, p)
		var err error
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(dst, 0o755)
		case tar.TypeReg:
			if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
				err = os.WriteFile(dst, u.files[h.Name], os.FileMode(h.Mode))
			}
		case tar.TypeSymlink:
			if err = os.MkdirAll(filepath.Dir(dst), 0o755); err == nil {
				err = os.Symlink(h.Linkname, dst)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// What the container runtime adds to every container: /proc, and /dev/stdin, which nft -f -
	// opens. The proc mount lives in a mount namespace of the command's own.
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/fd/0", filepath.Join(root, "dev", "stdin")); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("unshare", append([]string{"--net", "--mount", "--pid", "--fork", "--mount-proc=" + filepath.Join(root, "proc"), "--", "chroot", root, AgentNFT}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("nft %s in the image: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run("", "--version"); !strings.HasPrefix(out, "nftables v") {
		t.Errorf("nft --version said %q", out)
	}
	script := `table inet podsg_image_test {
	counter deny_x { }
	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		iifname "eni*" ip saddr 10.0.0.1 tcp dport 80 accept
		iifname "eni*" counter name "deny_x" drop
	}
}
list counters table inet podsg_image_test
`
	if out := run(script, "-f", "-"); !strings.Contains(out, "counter deny_x") {
		t.Errorf("nft -f of a ruleset with a named counter: the listing lacks it: %s", out)
	}
	// -j reads scripts as JSON, so the JSON output is checked on its own (a fresh namespace:
	// an empty ruleset, whose listing still carries nft's metainfo object).
	if out := run("", "-j", "list", "ruleset"); !strings.Contains(out, `"metainfo"`) {
		t.Errorf("nft -j list ruleset said %q", out)
	}
}
