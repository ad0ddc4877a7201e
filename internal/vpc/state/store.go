package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	"k8s.io/utils/clock"

	"github.com/podsg/podsg/internal/vpc/apierr"
	"github.com/podsg/podsg/internal/vpc/idgen"
)

// Limits are the EC2 quotas the store enforces.
type Limits struct {
	SecurityGroupsPerInterface int `json:"securityGroupsPerInterface"`
	// RulesPerSecurityGroup applies to inbound and outbound rules separately,
	// as the AWS quota does.
	RulesPerSecurityGroup int `json:"rulesPerSecurityGroup"`
	TagsPerResource       int `json:"tagsPerResource"`
}

// DefaultLimits are the AWS default quotas.
func DefaultLimits() Limits {
	return Limits{SecurityGroupsPerInterface: 5, RulesPerSecurityGroup: 60, TagsPerResource: 50}
}

// Applier is the data-path seam: it is called after every committed
// mutation of the network (IAM changes build nothing in it), before the caller is answered, with a read-only view of the new
// state, and once at Open with the whole state. An error is reported to the
// caller as InternalError but does not undo the committed mutation; since
// each call sees the whole state, the next successful call converges.
type Applier interface {
	Apply(ctx context.Context, snap *Snapshot) error
}

// Options configure a Store.
type Options struct {
	// Path is the bbolt file; empty keeps state in memory only.
	Path   string
	Region string
	Clock  clock.PassiveClock
	IDs    idgen.Source
	Limits Limits
	// Applier may be nil.
	Applier Applier
}

// Store is the VPC state: an in-memory model, persisted to bbolt.
//
// Writers are serialised by writeMu for the whole transaction, including the
// Applier call, so the data path sees commits in order. mu guards the model
// itself: writers hold it while mutating and persisting, readers share it.
type Store struct {
	opts    Options
	db      *bolt.DB
	writeMu sync.Mutex
	mu      sync.RWMutex
	m       *model
	// ipCursor remembers where the last allocation in a subnet ended so
	// allocation stays O(1) amortised in big subnets. Not persisted.
	ipCursor map[string]uint32
}

// ErrApply wraps an Applier failure after a committed mutation.
var ErrApply = errors.New("applying state to the data path")

// Open loads (and if needed migrates) the state file.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.IDs == nil {
		opts.IDs = idgen.Crypto{}
	}
	if opts.Limits == (Limits{}) {
		opts.Limits = DefaultLimits()
	}
	if opts.Region == "" {
		return nil, fmt.Errorf("opening state: region is required")
	}
	s := &Store{opts: opts, m: newModel(), ipCursor: map[string]uint32{}}
	if opts.Path != "" {
		db, err := bolt.Open(opts.Path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
		if err != nil {
			return nil, fmt.Errorf("opening state file %s: %w", opts.Path, err)
		}
		s.db = db
		if err := s.load(); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	if err := s.applyAll(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the state file.
func (s *Store) Close() error {
	if s.db == nil {
		return nil
	}
	return s.db.Close()
}

// Region is the region the store serves.
func (s *Store) Region() string { return s.opts.Region }

// Limits returns the enforced quotas.
func (s *Store) Limits() Limits { return s.opts.Limits }

// View runs fn with a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return fn(&Tx{s: s, m: s.m, now: s.opts.Clock.Now(), readOnly: true})
}

// Update runs fn as one serialisable transaction. If fn fails nothing
// changes. With dryRun the changes are discarded and a successful fn yields
// DryRunOperation. Otherwise changes are committed to disk, then the Applier
// runs, then Update returns.
func (s *Store) Update(ctx context.Context, dryRun bool, fn func(tx *Tx) error) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	changes, err := s.commit(dryRun, fn)
	if err != nil || len(changes) == 0 || s.opts.Applier == nil || identityOnly(changes) {
		return err
	}
	// The model only changes under writeMu, which we hold, so the Applier may
	// read it without mu while readers carry on.
	if err := s.opts.Applier.Apply(ctx, &Snapshot{m: s.m, changes: changes}); err != nil {
		return fmt.Errorf("%w: %w", ErrApply, err)
	}
	return nil
}

func (s *Store) commit(dryRun bool, fn func(tx *Tx) error) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &Tx{s: s, m: s.m, now: s.opts.Clock.Now(), dirty: map[Change]struct{}{}}
	err := fn(tx)
	if err == nil && dryRun {
		err = apierr.DryRun()
	}
	if err != nil {
		tx.rollback()
		return nil, err
	}
	if err := s.persist(tx.changes); err != nil {
		tx.rollback()
		return nil, err
	}
	return tx.changes, nil
}

func (s *Store) applyAll(ctx context.Context) error {
	if s.opts.Applier == nil {
		return nil
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.opts.Applier.Apply(ctx, &Snapshot{m: s.m}); err != nil {
		return fmt.Errorf("%w: %w", ErrApply, err)
	}
	return nil
}

// persist writes the changed objects in one bbolt transaction; bbolt fsyncs
// before Update returns, so an acknowledged mutation survives kill -9.
func (s *Store) persist(changes []Change) error {
	if s.db == nil || len(changes) == 0 {
		return nil
	}
	err := s.db.Update(func(btx *bolt.Tx) error {
		for _, c := range changes {
			t := s.m.table(c.Kind)
			b := btx.Bucket([]byte(c.Kind))
			if t == nil || b == nil {
				return fmt.Errorf("no bucket for %s", c.Kind)
			}
			data, ok, err := t.encode(c.ID)
			if err != nil {
				return err
			}
			if !ok {
				if err := b.Delete([]byte(c.ID)); err != nil {
					return err
				}
				continue
			}
			if err := b.Put([]byte(c.ID), data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("persisting state: %w", err)
	}
	return nil
}
