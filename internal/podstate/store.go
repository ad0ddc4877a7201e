package podstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrNotFound means no record exists for the container.
var ErrNotFound = errors.New("no pod network record")

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
	return decode(data)
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
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
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
