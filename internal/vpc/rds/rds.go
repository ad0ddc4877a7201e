// Package rds runs a minimal Amazon RDS for PostgreSQL in the local VPC: a
// database instance is a real PostgreSQL server in its own network
// namespace, reachable through a requester-managed ENI in the VPC under
// the instance's security groups. The RDS Query API (CreateDBInstance,
// DescribeDBInstances, DeleteDBInstance) calls Manager.
package rds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/podsg/podsg/internal/pginstall"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/idgen"
	"github.com/podsg/podsg/internal/vpc/resolver"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Statuses a DBInstance reports.
const (
	StatusCreating  = "creating"
	StatusAvailable = "available"
	StatusDeleting  = "deleting"
)

// ErrNotFound is returned for an unknown DB instance identifier
// (DBInstanceNotFound).
var ErrNotFound = errors.New("db instance not found")

// ErrExists is returned when the identifier is taken
// (DBInstanceAlreadyExists).
var ErrExists = errors.New("db instance already exists")

// Options configure a Manager.
type Options struct {
	Store *state.Store
	Names topo.Names
	// Region names the instances' endpoint hostnames (default us-west-2, the VPC's default).
	Region string
	// Dir holds one directory per DB instance (metadata and data); it and
	// its parents must be searchable by User.
	Dir string
	// BinDir holds initdb and pg_ctl (default pginstall.BinDir).
	BinDir string
	// User runs the server (default "postgres").
	User string
	// Tokens checks IAM connect tokens; nil refuses EnableIAMDatabaseAuthentication.
	Tokens TokenChecker
	// Helper is the podsg-vpc binary pam_exec runs as `rds-iam-auth` (default: this
	// program); it is copied into Dir, where the postgres user can run it.
	Helper string
	Log    logr.Logger
	// Registry, when set, receives the IAM authentication metrics.
	Registry prometheus.Registerer
}

// CreateInput is CreateDBInstance's request.
type CreateInput struct {
	ID               string
	SubnetID         string
	SecurityGroupIDs []string
	MasterUsername   string
	MasterPassword   string
	DBName           string
	Port             int
	InstanceClass    string
	// IAMAuth is EnableIAMDatabaseAuthentication: users granted rds_iam log in with
	// connect tokens.
	IAMAuth bool
}

// ModifyInput is ModifyDBInstance's request: nil fields are left as they are.
type ModifyInput struct {
	IAMAuth *bool
}

// DBInstance is a database instance as DescribeDBInstances reports it.
type DBInstance struct {
	ID            string `json:"id"`
	Status        string `json:"status"`
	Engine        string `json:"engine"`
	EngineVersion string `json:"engineVersion"`
	InstanceClass string `json:"instanceClass"`
	// Address is the ENI's private address, where PostgreSQL listens; Hostname the endpoint
	// the API reports, which the VPC resolver resolves to Address and IAM tokens name.
	Address          string    `json:"address"`
	Hostname         string    `json:"-"`
	Port             int       `json:"port"`
	VPCID            string    `json:"vpcId"`
	SubnetID         string    `json:"subnetId"`
	AvailabilityZone string    `json:"availabilityZone"`
	ENIID            string    `json:"eniId"`
	SecurityGroupIDs []string  `json:"securityGroupIds"`
	MasterUsername   string    `json:"masterUsername"`
	DBName           string    `json:"dbName,omitempty"`
	CreatedAt        time.Time `json:"createdAt"`
	// ResourceID is the DbiResourceId: the instance's identity in IAM policies
	// (arn:aws:rds-db:…:dbuser:RESOURCE-ID/USER), never reused, unlike the identifier.
	ResourceID string `json:"resourceId"`
	IAMAuth    bool   `json:"iamAuth,omitempty"`
}

// Manager creates, lists and deletes DB instances.
type Manager struct {
	opts   Options
	mu     sync.Mutex
	log    logr.Logger
	helper string       // the copy of Options.Helper that pam_exec runs
	auth   net.Listener // the helpers' socket; nil without Tokens
	authN  *prometheus.CounterVec
}

// New returns a Manager.
func New(o Options) (*Manager, error) {
	if o.Store == nil || o.Dir == "" || o.Names.ID == "" {
		return nil, fmt.Errorf("rds: store, dir and names are required")
	}
	if o.BinDir == "" {
		o.BinDir = pginstall.BinDir
	}
	if o.User == "" {
		o.User = "postgres"
	}
	if o.Region == "" {
		o.Region = "us-west-2"
	}
	// PostgreSQL runs as o.User and must traverse this dir to reach its instance dirs.
	if err := os.MkdirAll(o.Dir, 0o755); err != nil { //nolint:gosec // others need search permission: see above
		return nil, fmt.Errorf("creating rds dir: %w", err)
	}
	if err := checkTraversable(o.Dir, o.User); err != nil {
		return nil, err
	}
	m := &Manager{opts: o, log: o.Log, authN: newAuthMetric()}
	if m.log.GetSink() == nil {
		m.log = quietLog
	}
	if o.Registry != nil {
		if err := o.Registry.Register(m.authN); err != nil {
			return nil, fmt.Errorf("registering rds metrics: %w", err)
		}
	}
	if o.Tokens != nil {
		if err := m.startIAMAuth(); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Close stops answering IAM authentication; the databases keep running.
func (m *Manager) Close() error {
	if m.auth == nil {
		return nil
	}
	return m.auth.Close()
}

var idPattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,62}$`)

// Create provisions the ENI, initialises the cluster and starts it; it
// returns once PostgreSQL accepts connections.
func (m *Manager) Create(ctx context.Context, in CreateInput) (*DBInstance, error) {
	if !idPattern.MatchString(in.ID) {
		return nil, fmt.Errorf("invalid DB instance identifier %q", in.ID)
	}
	if in.MasterUsername == "" || len(in.MasterPassword) < 8 {
		return nil, fmt.Errorf("a master username and a password of at least 8 characters are required")
	}
	if in.Port == 0 {
		in.Port = 5432
	}
	if in.IAMAuth {
		if err := m.iamAuthReady(); err != nil {
			return nil, err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.load(in.ID); err == nil {
		return nil, ErrExists
	}
	db := &DBInstance{ID: in.ID, Status: StatusCreating, Engine: "postgres", EngineVersion: pginstall.Major, InstanceClass: in.InstanceClass,
		Port: in.Port, SubnetID: in.SubnetID, SecurityGroupIDs: in.SecurityGroupIDs, MasterUsername: in.MasterUsername,
		DBName: in.DBName, CreatedAt: time.Now().UTC(), ResourceID: newResourceID(idgen.Crypto{}), IAMAuth: in.IAMAuth,
		Hostname: resolver.RDSEndpoint(in.ID, m.opts.Region)}
	if db.InstanceClass == "" {
		db.InstanceClass = "db.t3.micro"
	}
	err := m.opts.Store.Update(ctx, false, func(tx *state.Tx) error {
		eni, err := tx.CreateNetworkInterface(state.CreateENIInput{
			SubnetID: in.SubnetID, GroupIDs: in.SecurityGroupIDs, Description: "RDSNetworkInterface",
			Tags: state.Tags{topo.AttachTag: "rds:" + in.ID},
		})
		if err != nil {
			return err
		}
		db.ENIID, db.Address, db.VPCID, db.AvailabilityZone = eni.ID, eni.PrivateIPs[0], eni.VPCID, eni.AvailabilityZone
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("creating the db instance's network interface: %w", err)
	}
	if err := m.save(db); err != nil {
		return nil, err
	}
	if err := m.initdb(ctx, db, in.MasterPassword); err != nil {
		return nil, err
	}
	if err := m.start(ctx, db); err != nil {
		return nil, err
	}
	db.Status = StatusAvailable
	return db, m.save(db)
}

// Modify changes an instance's settings and applies them to its running server.
func (m *Manager) Modify(ctx context.Context, id string, in ModifyInput) (*DBInstance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	db, err := m.load(id)
	if err != nil {
		return nil, err
	}
	if in.IAMAuth != nil && *in.IAMAuth != db.IAMAuth {
		if *in.IAMAuth {
			if err := m.iamAuthReady(); err != nil {
				return nil, err
			}
		}
		db.IAMAuth = *in.IAMAuth
		if err := m.save(db); err != nil {
			return nil, err
		}
		if err := m.applyAuth(ctx, db); err != nil {
			return nil, err
		}
	}
	return db, nil
}

// Describe returns the named instance, or all when id is "".
func (m *Manager) Describe(id string) ([]*DBInstance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id != "" {
		db, err := m.load(id)
		if err != nil {
			return nil, err
		}
		return []*DBInstance{db}, nil
	}
	entries, err := os.ReadDir(m.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("listing db instances: %w", err)
	}
	var out []*DBInstance
	for _, e := range entries {
		if db, err := m.load(e.Name()); err == nil {
			out = append(out, db)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Delete stops the server, deletes its ENI (which removes its namespace)
// and its data. It returns the instance as last seen, status "deleting".
func (m *Manager) Delete(ctx context.Context, id string) (*DBInstance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	db, err := m.load(id)
	if err != nil {
		return nil, err
	}
	db.Status = StatusDeleting
	_ = m.stop(ctx, db) // a server that is not running is fine: the namespace removal ends stragglers
	err = m.opts.Store.Update(ctx, false, func(tx *state.Tx) error { return tx.DeleteNetworkInterface(db.ENIID) })
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("deleting the db instance's network interface: %w", err)
	}
	if err := m.removePAMService(db); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(m.dir(id)); err != nil {
		return nil, fmt.Errorf("removing db instance data: %w", err)
	}
	return db, nil
}

// Resume starts the servers of every known instance that is not running,
// e.g. after the machine rebooted.
func (m *Manager) Resume(ctx context.Context) error {
	dbs, err := m.Describe("")
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, db := range dbs {
		if db.Status == StatusAvailable && !m.running(ctx, db) {
			errs = append(errs, m.start(ctx, db))
		}
	}
	return errors.Join(errs...)
}

func (m *Manager) dir(id string) string { return filepath.Join(m.opts.Dir, id) }

func (m *Manager) save(db *DBInstance) error {
	if err := os.MkdirAll(m.dir(db.ID), 0o700); err != nil {
		return fmt.Errorf("creating db instance dir: %w", err)
	}
	b, _ := json.MarshalIndent(db, "", "  ")
	tmp := filepath.Join(m.dir(db.ID), "instance.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("saving db instance: %w", err)
	}
	return os.Rename(tmp, filepath.Join(m.dir(db.ID), "instance.json"))
}

func (m *Manager) load(id string) (*DBInstance, error) {
	b, err := os.ReadFile(filepath.Join(m.dir(id), "instance.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading db instance %s: %w", id, err)
	}
	var db DBInstance
	if err := json.Unmarshal(b, &db); err != nil {
		return nil, fmt.Errorf("decoding db instance %s: %w", id, err)
	}
	if db.ResourceID == "" {
		// Saved before instances had one: derived from what identifies this
		// instance (a recreated one has another creation time), so it is stable.
		db.ResourceID = legacyResourceID(&db)
	}
	db.Hostname = resolver.RDSEndpoint(db.ID, m.opts.Region)
	return &db, nil
}

func isNotFound(err error) bool {
	var coded interface{ ErrorCode() string }
	return errors.As(err, &coded) && coded.ErrorCode() == "InvalidNetworkInterfaceID.NotFound"
}

// checkTraversable fails early, with a message saying what to do, when user could not reach
// dir: PostgreSQL runs as that user and needs every ancestor to be searchable. (A state dir
// under root's home, mode 0700, is the usual cause.)
func checkTraversable(dir, user string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("checking %s: %w", d, err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("the RDS data dir %s is not reachable by user %s: %s is mode %v; use a state dir whose parents are searchable (e.g. under /var/lib) or chmod o+x %s",
				abs, user, d, fi.Mode().Perm(), d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}
