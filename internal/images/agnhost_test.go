package images

import (
	"strings"
	"testing"
)

// TestAgnhostImage: /agnhost is agnhost itself on a kernel with SCTP, and on one without, a
// bash script that drops only porter's SCTP ports and execs agnhost with the same arguments.
func TestAgnhostImage(t *testing.T) {
	bash := []File{{Path: "/bin/bash", Source: "/bin/bash"}, {Path: "/lib/x86_64-linux-gnu/libc.so.6", Source: "/lib/x86_64-linux-gnu/libc.so.6"}}
	entry := func(img Image) File {
		for _, f := range img.Files {
			if f.Path == "/agnhost" {
				return f
			}
		}
		t.Fatalf("%s has no /agnhost", img.Name)
		return File{}
	}
	with, err := AgnhostImage(AgnhostNPAPI, "/cache/agnhost", bash, true)
	if err != nil {
		t.Fatal(err)
	}
	if f := entry(with); f.Symlink != AgnhostBin {
		t.Errorf("with SCTP, /agnhost = %+v, want a symlink to %s", f, AgnhostBin)
	}
	if with.Name != AgnhostNPAPI || strings.Join(with.Entrypoint, " ") != "/agnhost" || len(with.Files) != 4 {
		t.Errorf("image = %+v", with)
	}
	without, err := AgnhostImage(AgnhostNPAPI, "/cache/agnhost", bash, false)
	if err != nil {
		t.Fatal(err)
	}
	script := string(entry(without).Data)
	for _, want := range []string{"#!/bin/bash\n", `"$1" = porter`, "unset", "exec " + AgnhostBin + ` "$@"`} {
		if !strings.Contains(script, want) {
			t.Errorf("without SCTP, /agnhost lacks %q:\n%s", want, script)
		}
	}
	if _, err := AgnhostImage(AgnhostNPAPI, "/cache/agnhost", nil, true); err == nil {
		t.Error("an agnhost image without bash: no error")
	}
}
