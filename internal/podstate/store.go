package podstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotFound means no record exists for the container.
var ErrNotFound = errors.New("no pod network record")

// CorruptError means a record file exists but cannot drive a teardown: it is not JSON, not a
// valid record, or of a version this build does not read. Such a file would block its
// container's DEL forever; callers tear down by what they can derive without it and move it
// out of the way with SetAside.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("pod network record %s is unusable: %v", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// corruptSuffix names a set-aside record: <record>.json.corrupt-<UTC time>. List skips such
// files (they do not end in .json), the operator finds them next to the live records.
const corruptSuffix = ".corrupt-"

// Store keeps records as files in a directory.
type Store struct{ dir string }

// NewStore returns a store in dir, creating it if needed.
func NewStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating pod state dir: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(containerID, ifName string) string {
	return filepath.Join(s.dir, containerID+"_"+ifName+".json")
}

// Put writes r atomically: a reader sees the old record or the new one, never a torn file,
// also across a crash (write to a temporary file, fsync, rename, fsync the directory).
func (s *Store) Put(r *Record) error {
	if r.Version == 0 {
		r.Version = Version
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("writing pod network record %s: %w", r.Key(), err)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding pod network record %s: %w", r.Key(), err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("writing pod network record %s: %w", r.Key(), err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing pod network record %s: %w", r.Key(), err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("syncing pod network record %s: %w", r.Key(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("closing pod network record %s: %w", r.Key(), err)
	}
	if err := os.Rename(tmp.Name(), s.path(r.ContainerID, r.IfName)); err != nil {
		return fmt.Errorf("renaming pod network record %s: %w", r.Key(), err)
	}
	return syncDir(s.dir)
}

// Get reads the record of a container's interface; ErrNotFound if there is none.
func (s *Store) Get(containerID, ifName string) (*Record, error) {
	data, err := os.ReadFile(s.path(containerID, ifName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("container %s interface %s: %w", containerID, ifName, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading pod network record: %w", err)
	}
	r, err := decode(data)
	if err != nil {
		return nil, &CorruptError{Path: s.path(containerID, ifName), Err: err}
	}
	return r, nil
}

func decode(data []byte) (*Record, error) {
	r := &Record{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decoding pod network record: %w", err)
	}
	if err := r.Validate(); err != nil {
		return nil, fmt.Errorf("pod network record %s: %w", r.Key(), err)
	}
	return r, nil
}

// Delete removes a record; deleting a missing record is not an error (DEL is idempotent).
func (s *Store) Delete(containerID, ifName string) error {
	err := os.Remove(s.path(containerID, ifName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting pod network record: %w", err)
	}
	return syncDir(s.dir)
}

// SetAside renames a container's record to <record>.corrupt-<now, UTC>, next to it, and returns
// the new path: an unusable record then no longer blocks the container, and nothing is lost for
// the operator who looks into it. ErrNotFound if there is no record (another caller set it
// aside first, or deleted it).
func (s *Store) SetAside(containerID, ifName string, now time.Time) (string, error) {
	src := s.path(containerID, ifName)
	base := src + corruptSuffix + now.UTC().Format("20060102T150405.000000000Z")
	dst := base
	// Never clobber an earlier set-aside file, even one with the same timestamp.
	for i := 1; ; i++ {
		if _, err := os.Lstat(dst); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s-%d", base, i)
	}
	err := os.Rename(src, dst)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("setting aside container %s interface %s: %w", containerID, ifName, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("setting aside pod network record: %w", err)
	}
	return dst, syncDir(s.dir)
}

// List returns every readable record. Unreadable files are returned as errors alongside, so
// that the agent can report them without losing the others.
func (s *Store) List() ([]*Record, []error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("listing pod network records: %w", err)}
	}
	var recs []*Record
	var errs []error
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", e.Name(), err))
			continue
		}
		r, err := decode(data)
		if err != nil {
			errs = append(errs, &CorruptError{Path: filepath.Join(s.dir, e.Name()), Err: err})
			continue
		}
		recs = append(recs, r)
	}
	return recs, errs
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing pod state dir: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing pod state dir: %w", err)
	}
	return nil
}
