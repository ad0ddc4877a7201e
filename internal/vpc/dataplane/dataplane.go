package dataplane

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/vpc/dataplane/firewall"
	"github.com/podsg/podsg/internal/vpc/dataplane/kernel"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/imds"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Dataplane makes the network reflect the VPC state. Apply is called with
// the whole committed state (Snapshot.Changes says what the last
// transaction touched, nil meaning everything), serially, once at start and
// after every mutation, before the mutating API call is answered; so a
// successful EC2 response means the data path already reflects it. An error
// becomes InternalError for that call; the mutation stays committed and the
// next Apply is expected to converge. A Dataplane that also implements
// io.Closer is closed at shutdown (its kernel state stays for the next
// start).
type Dataplane = state.Applier

// None is the no-op data path: API and state only.
type None struct{}

// Apply implements Dataplane.
func (None) Apply(context.Context, *state.Snapshot) error { return nil }

var _ Dataplane = None{}

// APIEndpoint is implemented by a data path that serves the API inside the
// VPC (netns): SetAPIHandler(h) serves h in every running instance at
// http://169.254.169.254:8450 (topo.APIPort), like an EC2 interface VPC
// endpoint, so processes in instances reach the API; nil stops it. See
// kernel.Dataplane.SetAPIHandler.
type APIEndpoint interface {
	SetAPIHandler(h http.Handler) error
}

var _ APIEndpoint = (*kernel.Dataplane)(nil)

// InstanceCredentials is implemented by a data path whose instance
// metadata serves instance profile credentials (netns): see
// kernel.Dataplane.SetInstanceCredentials.
type InstanceCredentials interface {
	SetInstanceCredentials(src imds.CredentialSource)
}

var _ InstanceCredentials = (*kernel.Dataplane)(nil)

// Options configure the data path New builds.
type Options struct {
	// StateDir identifies the server: kernel objects carry an id derived
	// from it, so two servers never touch each other's.
	StateDir string
	Region   string
	Log      logr.Logger
}

// Option sets an Option field.
type Option func(*Options)

// WithStateDir sets Options.StateDir.
func WithStateDir(dir string) Option { return func(o *Options) { o.StateDir = dir } }

// WithRegion sets Options.Region.
func WithRegion(region string) Option { return func(o *Options) { o.Region = region } }

// WithLog sets Options.Log.
func WithLog(log logr.Logger) Option { return func(o *Options) { o.Log = log } }

// New returns the data path named by the --dataplane flag: "none", or
// "netns" (root only: namespaces, veths, nftables; needs WithStateDir).
func New(name string, opts ...Option) (Dataplane, error) {
	var o Options
	for _, f := range opts {
		f(&o)
	}
	switch name {
	case "", "none":
		return None{}, nil
	case "netns":
		if o.StateDir == "" {
			return nil, fmt.Errorf("dataplane netns: a state dir is required")
		}
		return kernel.New(kernel.Options{ID: topo.IDFromStateDir(o.StateDir), Region: o.Region, IMDS: true, Log: o.Log})
	}
	return nil, fmt.Errorf("unknown dataplane %q (supported: none, netns)", name)
}

// Cleanup removes every kernel object the netns data path of the server
// with this state dir created (`podsg-vpc cleanup`).
func Cleanup(stateDir string) error { return CleanupID(topo.IDFromStateDir(stateDir)) }

// CleanupID is Cleanup by the server's id (the part after "podsg-" in its namespace names),
// for when the state dir is gone.
func CleanupID(id string) error {
	if !topo.ValidID(id) {
		return fmt.Errorf("%q is not a data path id (6 hex digits, as in podsg-<id>-vpc-…)", id)
	}
	return kernel.Cleanup(id)
}

// Start starts cmd inside an instance of the server with this state dir
// (`podsg-vpc exec`); the caller waits for it. No running server is needed.
func Start(stateDir, instanceID string, cmd *exec.Cmd) error {
	return kernel.Start(topo.Names{ID: topo.IDFromStateDir(stateDir)}, instanceID, cmd)
}

// Flows returns the per-ENI, per-rule packet counters of the server with
// this state dir, for the given VPCs (all when none): which rule let a
// packet in, or that the default deny dropped it (`podsg-vpc flows`).
func Flows(stateDir string, vpcIDs ...string) ([]firewall.Flow, error) {
	return kernel.Flows(topo.Names{ID: topo.IDFromStateDir(stateDir)}, vpcIDs...)
}
