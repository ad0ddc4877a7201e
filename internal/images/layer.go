package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// Epoch is the timestamp of every file and of the image config: identical inputs give
// byte-identical archives, so a re-import is a no-op and tests can compare digests.
var Epoch = time.Unix(0, 0).UTC()

// File is one entry of a layer. Exactly one of Source (a host file to copy), Data, or
// Symlink is set; Path is absolute inside the image.
type File struct {
	Path    string
	Source  string
	Data    []byte
	Symlink string
	Mode    os.FileMode // permission bits; 0 means 0755 for files
}

// blob is content plus its digest.
type blob struct {
	data   []byte
	digest string
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{data: data, digest: "sha256:" + hex.EncodeToString(sum[:])}
}

// buildLayer writes files (and their parent directories) into a sorted tar, and returns the
// layer gzipped at level and the digest of the uncompressed tar (the config's diff_id).
func buildLayer(files []File, level int) (layer blob, diffID string, err error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	sorted := append([]File(nil), files...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	dirs := map[string]bool{}
	for _, f := range sorted {
		name := strings.TrimPrefix(path.Clean(f.Path), "/")
		if err := writeParents(tw, dirs, path.Dir(name)); err != nil {
			return blob{}, "", err
		}
		if err := writeFile(tw, name, f); err != nil {
			return blob{}, "", fmt.Errorf("adding %s: %w", f.Path, err)
		}
	}
	if err := tw.Close(); err != nil {
		return blob{}, "", fmt.Errorf("closing layer tar: %w", err)
	}
	diffID = newBlob(raw.Bytes()).digest
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, level)
	if err != nil {
		return blob{}, "", fmt.Errorf("creating gzip writer: %w", err)
	}
	// The gzip header carries no name and a zero mtime, again for reproducibility.
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return blob{}, "", fmt.Errorf("compressing layer: %w", err)
	}
	if err := zw.Close(); err != nil {
		return blob{}, "", fmt.Errorf("compressing layer: %w", err)
	}
	return newBlob(gz.Bytes()), diffID, nil
}

func writeParents(tw *tar.Writer, seen map[string]bool, dir string) error {
	if dir == "." || dir == "/" || dir == "" || seen[dir] {
		return nil
	}
	if err := writeParents(tw, seen, path.Dir(dir)); err != nil {
		return err
	}
	seen[dir] = true
	return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: Epoch, Format: tar.FormatPAX})
}

func writeFile(tw *tar.Writer, name string, f File) error {
	hdr := &tar.Header{Name: name, ModTime: Epoch, Format: tar.FormatPAX, Mode: 0o755}
	if f.Mode != 0 {
		hdr.Mode = int64(f.Mode.Perm())
	}
	if f.Symlink != "" {
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, f.Symlink, 0o777
		return tw.WriteHeader(hdr)
	}
	data := f.Data
	if f.Source != "" {
		var err error
		if data, err = os.ReadFile(f.Source); err != nil {
			return fmt.Errorf("reading source: %w", err)
		}
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(data))
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := io.Copy(tw, bytes.NewReader(data))
	return err
}
