package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// unpacked is what a runtime sees of an archive: its name, config, and layer entries.
type unpacked struct {
	name    string
	config  containerConfig
	headers map[string]*tar.Header
	files   map[string][]byte
}

func unpack(t *testing.T, archive io.Reader) unpacked {
	t.Helper()
	_, files := readTar(t, archive)
	var idx index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	var man manifest
	if err := json.Unmarshal(blobOf(t, files, idx.Manifests[0]), &man); err != nil || len(man.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(blobOf(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobOf(t, files, man.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	hdrs, contents := readTar(t, zr)
	u := unpacked{name: idx.Manifests[0].Annotations[AnnotationImageName], config: cfg.Config, headers: map[string]*tar.Header{}, files: contents}
	for _, h := range hdrs {
		u.headers["/"+h.Name] = h
	}
	return u
}

// fakeFile writes content to a file in dir and returns its path.
func fakeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDeployImages writes both archives from fake binaries and checks what a runtime would run:
// the name the manifests' references normalize to, the entrypoint, the user, and each file at
// its path with its content and mode (binaries executable even though the sources are not).
func TestDeployImages(t *testing.T) {
	dir := t.TempDir()
	agent, cni := fakeFile(t, dir, "podsg-agent", "agent"), fakeFile(t, dir, "podsg-cni", "cni")
	controller, ca := fakeFile(t, dir, "podsg-controller", "controller"), fakeFile(t, dir, "ca.crt", "roots")
	tests := map[string]struct {
		img        Image
		name, user string
		entrypoint []string
		files      map[string]string // path in the image → content
	}{
		"agent": {
			img: AgentImage(agent, cni, ca, nil), name: "docker.io/library/podsg-agent:latest",
			entrypoint: []string{"/usr/local/bin/podsg-agent"},
			files:      map[string]string{"/usr/local/bin/podsg-agent": "agent", "/usr/local/bin/podsg-cni": "cni", "/etc/ssl/certs/ca-certificates.crt": "roots"},
		},
		"controller": {
			img: ControllerImage(controller, ca), name: "docker.io/library/podsg-controller:latest", user: "65532:65532",
			entrypoint: []string{"/usr/local/bin/podsg-controller"},
			files:      map[string]string{"/usr/local/bin/podsg-controller": "controller", "/etc/ssl/certs/ca-certificates.crt": "roots"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".tar")
			if err := SaveArchive(path, tc.img); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = f.Close() }()
			u := unpack(t, f)
			if u.name != tc.name {
				t.Errorf("image name %q, want %q", u.name, tc.name)
			}
			if !reflect.DeepEqual(u.config.Entrypoint, tc.entrypoint) || u.config.Cmd != nil || u.config.User != tc.user {
				t.Errorf("config entrypoint %q cmd %q user %q, want %q, none, %q", u.config.Entrypoint, u.config.Cmd, u.config.User, tc.entrypoint, tc.user)
			}
			regular := 0
			for p, h := range u.headers {
				if h.Typeflag != tar.TypeReg {
					continue
				}
				regular++
				want, ok := tc.files[p]
				if !ok {
					t.Errorf("unexpected file %s in the image", p)
					continue
				}
				if got := string(u.files[h.Name]); got != want {
					t.Errorf("%s holds %q, want %q", p, got, want)
				}
				wantMode := int64(0o755)
				if p == CABundle {
					wantMode = 0o644
				}
				if h.Mode != wantMode {
					t.Errorf("%s mode %o, want %o", p, h.Mode, wantMode)
				}
			}
			if regular != len(tc.files) {
				t.Errorf("%d files in the image, want %d", regular, len(tc.files))
			}
		})
	}
}

// TestSaveArchiveMissingSource: a missing binary fails the save and leaves neither the archive
// nor a temporary file behind.
func TestSaveArchiveMissingSource(t *testing.T) {
	dir := t.TempDir()
	ca := fakeFile(t, dir, "ca.crt", "roots")
	out := t.TempDir()
	if err := SaveArchive(filepath.Join(out, "c.tar"), ControllerImage(filepath.Join(dir, "absent"), ca)); err == nil {
		t.Fatal("saving an image whose binary is missing succeeded")
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
}
