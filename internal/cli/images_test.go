package cli

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// archiveImage reads what a runtime would take from an image archive: the name, the
// entrypoint, and the layer's regular files with their contents.
func archiveImage(t *testing.T, path string) (name string, entrypoint []string, files map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	entries := untar(t, bytes.NewReader(data))
	blob := func(digest string) []byte {
		b, ok := entries["blobs/sha256/"+strings.TrimPrefix(digest, "sha256:")]
		if !ok {
			t.Fatalf("%s: blob %s missing", path, digest)
		}
		return []byte(b)
	}
	type desc struct {
		Digest      string
		Annotations map[string]string
	}
	var idx struct{ Manifests []desc }
	var man struct {
		Config desc
		Layers []desc
	}
	var cfg struct{ Config struct{ Entrypoint []string } }
	if err := json.Unmarshal([]byte(entries["index.json"]), &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("%s: index.json %q: %v", path, entries["index.json"], err)
	}
	if err := json.Unmarshal(blob(idx.Manifests[0].Digest), &man); err != nil || len(man.Layers) != 1 {
		t.Fatalf("%s: manifest: %v", path, err)
	}
	if err := json.Unmarshal(blob(man.Config.Digest), &cfg); err != nil {
		t.Fatalf("%s: config: %v", path, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob(man.Layers[0].Digest)))
	if err != nil {
		t.Fatal(err)
	}
	return idx.Manifests[0].Annotations["io.containerd.image.name"], cfg.Config.Entrypoint, untar(t, zr)
}

// untar returns the regular files of a tar stream by name.
func untar(t *testing.T, r io.Reader) map[string]string {
	t.Helper()
	files := map[string]string{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[h.Name] = string(b)
		}
	}
}

// TestImagesSave runs `podsg images save` on fake binaries: each binary lands in its image at
// the path the manifests use, and a second run rewrites byte-identical archives.
func TestImagesSave(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []string{"podsg-agent", "podsg-cni", "podsg-controller", "ca.crt"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("fake "+b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "images") // created by the command
	args := []string{"images", "save", "--out", out, "--bin-dir", bin, "--ca-bundle", filepath.Join(bin, "ca.crt"), "--nft", ""}
	var stdout, stderr bytes.Buffer
	if code := Run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	want := map[string]struct {
		name       string
		entrypoint []string
		files      map[string]string
	}{
		"podsg-agent.tar": {"docker.io/library/podsg-agent:latest", []string{"/usr/local/bin/podsg-agent"}, map[string]string{
			"usr/local/bin/podsg-agent": "fake podsg-agent", "usr/local/bin/podsg-cni": "fake podsg-cni", "etc/ssl/certs/ca-certificates.crt": "fake ca.crt"}},
		"podsg-controller.tar": {"docker.io/library/podsg-controller:latest", []string{"/usr/local/bin/podsg-controller"}, map[string]string{
			"usr/local/bin/podsg-controller": "fake podsg-controller", "etc/ssl/certs/ca-certificates.crt": "fake ca.crt"}},
	}
	first := map[string][]byte{}
	for file, w := range want {
		p := filepath.Join(out, file)
		name, entrypoint, files := archiveImage(t, p)
		if name != w.name || !reflect.DeepEqual(entrypoint, w.entrypoint) || !reflect.DeepEqual(files, w.files) {
			t.Errorf("%s: name %q entrypoint %q files %q;\nwant %q %q %q", file, name, entrypoint, files, w.name, w.entrypoint, w.files)
		}
		if !strings.Contains(stdout.String(), "wrote "+p+" ("+w.name+")\n") {
			t.Errorf("output does not report %s:\n%s", p, stdout.String())
		}
		first[file], _ = os.ReadFile(p)
	}
	if entries, _ := os.ReadDir(out); len(entries) != len(want) {
		t.Errorf("%s holds %d entries, want exactly the %d archives", out, len(entries), len(want))
	}

	if code := Run(t.Context(), args, io.Discard, &stderr); code != 0 {
		t.Fatalf("second run: exit code %d: %s", code, stderr.String())
	}
	for file, data := range first {
		if again, _ := os.ReadFile(filepath.Join(out, file)); !bytes.Equal(again, data) {
			t.Errorf("%s changed between two runs on the same binaries", file)
		}
	}
}

func TestImagesSaveErrors(t *testing.T) {
	bin := t.TempDir()
	ca := filepath.Join(bin, "ca.crt")
	if err := os.WriteFile(ca, []byte("roots"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"no --out":          {args: []string{"--bin-dir", bin, "--ca-bundle", ca}, wantErr: "--out is required"},
		"binaries missing":  {args: []string{"--out", t.TempDir(), "--bin-dir", bin, "--ca-bundle", ca, "--nft", ""}, wantErr: filepath.Join(bin, "podsg-agent")},
		"nft not a program": {args: []string{"--out", t.TempDir(), "--bin-dir", bin, "--ca-bundle", ca, "--nft", ca}, wantErr: "--nft"},
		"CA bundle missing": {args: []string{"--out", t.TempDir(), "--bin-dir", bin, "--ca-bundle", filepath.Join(bin, "none")}, wantErr: "--ca-bundle"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := Run(t.Context(), append([]string{"images", "save"}, tc.args...), io.Discard, &stderr); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(stderr.String(), tc.wantErr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.wantErr)
			}
		})
	}
}
