package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func testImage() Image {
	return Image{
		Name:       "podsg.local/test:v1",
		Files:      []File{{Path: "/usr/local/bin/app", Data: []byte("#!/bin/sh\n")}, {Path: "/bin/sh", Symlink: "busybox"}, {Path: "/bin/busybox", Data: []byte("bb")}},
		Entrypoint: []string{"/usr/local/bin/app"},
		Env:        []string{"A=b"},
	}
}

// readTar returns the entries of a tar stream in order, and their contents.
func readTar(t *testing.T, r io.Reader) ([]*tar.Header, map[string][]byte) {
	t.Helper()
	tr := tar.NewReader(r)
	var hdrs []*tar.Header
	data := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hdrs, data
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		hdrs, data[h.Name] = append(hdrs, h), b
	}
}

func digest(b []byte) string { s := sha256.Sum256(b); return "sha256:" + hex.EncodeToString(s[:]) }

func blobOf(t *testing.T, files map[string][]byte, d descriptor) []byte {
	t.Helper()
	b, ok := files["blobs/sha256/"+d.Digest[len("sha256:"):]]
	if !ok || digest(b) != d.Digest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s missing or does not match its descriptor", d.Digest)
	}
	return b
}

func TestArchiveLayout(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteArchive(&buf, testImage()); err != nil {
		t.Fatal(err)
	}
	_, files := readTar(t, &buf)
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", files["oci-layout"])
	}
	var idx index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, files["index.json"])
	}
	if a := idx.Manifests[0].Annotations; a[AnnotationImageName] != "podsg.local/test:v1" || a[annotationRefName] != "v1" {
		t.Errorf("annotations = %v", a)
	}
	var man manifest
	if err := json.Unmarshal(blobOf(t, files, idx.Manifests[0]), &man); err != nil || len(man.Layers) != 1 {
		t.Fatalf("manifest: %v", err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(blobOf(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || !reflect.DeepEqual(cfg.Config.Entrypoint, []string{"/usr/local/bin/app"}) ||
		!reflect.DeepEqual(cfg.Config.Env, []string{DefaultPath, "A=b"}) {
		t.Errorf("config = %+v", cfg)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobOf(t, files, man.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(zr)
	if digest(raw) != cfg.RootFS.DiffIDs[0] {
		t.Error("diff_id is not the digest of the uncompressed layer")
	}
	hdrs, contents := readTar(t, bytes.NewReader(raw))
	var names []string
	for _, h := range hdrs {
		names = append(names, h.Name)
		if !h.ModTime.Equal(Epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: mtime %v uid %d gid %d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		if h.Name == "bin/sh" && (h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox") {
			t.Errorf("bin/sh is not a symlink to busybox: %+v", h)
		}
	}
	want := []string{"bin/", "bin/busybox", "bin/sh", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/app"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("layer entries = %v, want %v", names, want)
	}
	if string(contents["usr/local/bin/app"]) != "#!/bin/sh\n" {
		t.Error("file content lost")
	}
}

func TestArchiveIsDeterministic(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteArchive(&a, testImage()); err != nil {
		t.Fatal(err)
	}
	img := testImage()
	img.Files[0], img.Files[2] = img.Files[2], img.Files[0] // order of inputs must not matter
	if err := WriteArchive(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("same image gave different archives")
	}
}

func TestTagOf(t *testing.T) {
	for ref, want := range map[string]string{"podsg.local/pause:latest": "latest", "localhost:5000/x": "latest", "a/b:v2": "v2"} {
		if got := tagOf(ref); got != want {
			t.Errorf("tagOf(%s) = %s, want %s", ref, got, want)
		}
	}
}

// TestRenderedIsTheSameImage: a rendered image is the same image (same layer content, config
// and name) written once: writing it again reads no file, so the nodes it is imported into
// get identical bytes even if its sources change meanwhile.
func TestRenderedIsTheSameImage(t *testing.T) {
	src := filepath.Join(t.TempDir(), "app")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho v1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	img := testImage()
	img.Files = append(img.Files, File{Path: "/usr/local/bin/from-disk", Source: src})
	r, err := Rendered(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho v2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var first, second bytes.Buffer
	if err := WriteArchive(&first, r); err != nil {
		t.Fatal(err)
	}
	if err := WriteArchive(&second, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Bytes(), second.Bytes()) {
		t.Error("a rendered image gave two different archives")
	}
	_, files := readTar(t, &first)
	var idx index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	var man manifest
	if err := json.Unmarshal(blobOf(t, files, idx.Manifests[0]), &man); err != nil {
		t.Fatal(err)
	}
	var cfg imageConfig
	if err := json.Unmarshal(blobOf(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobOf(t, files, man.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if digest(raw) != cfg.RootFS.DiffIDs[0] {
		t.Error("the layer does not match its diff_id")
	}
	_, contents := readTar(t, bytes.NewReader(raw))
	if got := string(contents["usr/local/bin/from-disk"]); got != "#!/bin/sh\necho v1\n" {
		t.Errorf("from-disk = %q, want the content when rendered", got)
	}
	if idx.Manifests[0].Annotations[AnnotationImageName] != img.Name || !reflect.DeepEqual(cfg.Config.Entrypoint, img.Entrypoint) {
		t.Errorf("name %q, entrypoint %v: not the image's", idx.Manifests[0].Annotations[AnnotationImageName], cfg.Config.Entrypoint)
	}
}
