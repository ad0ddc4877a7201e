// Package kernel is the local VPC's data path in the Linux kernel (the one
// `podsg-vpc serve --dataplane netns` selects): it makes what the EC2 API
// says exists exist in the kernel, and enforces security groups on every
// packet. A VPC is a fabric namespace routing between its ENIs; an instance
// is a namespace holding its ENIs as eth<N>, each a veth into the fabric;
// branch ENIs are VXLAN sub-interfaces of their trunk; nftables in the
// fabric enforce security groups statefully. See docs/local-vpc.md.
//
// It assembles the data path from its sibling packages: namespace (create,
// enter, delete one named network namespace), firewall (the nftables
// ruleset) and topo (the names of every kernel object).
package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/vpc/dataplane/firewall"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/imds"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Options configure the data path.
type Options struct {
	// ID distinguishes this server's kernel objects from another's; use
	// topo.IDFromStateDir. Required.
	ID string
	// Region is what instance metadata reports.
	Region string
	// IMDS serves instance metadata in every instance namespace, at
	// IMDSAddr:80. (The API endpoint at IMDSAddr:topo.APIPort is served
	// once SetAPIHandler is called.)
	IMDS bool
	Log  logr.Logger
}

// Dataplane implements state.Applier on network namespaces.
type Dataplane struct {
	opts  Options
	names topo.Names
	imds  *imdsServers  // per-instance listeners: metadata, API endpoint
	dns   *vpcResolvers // per-VPC resolvers in the fabrics
	// mu serialises Apply (the store already does) against Flows/Close.
	mu sync.Mutex
}

var _ state.Applier = (*Dataplane)(nil)

// New returns the data path; kernel state is converged by the first Apply.
func New(o Options) (*Dataplane, error) {
	if o.ID == "" {
		return nil, fmt.Errorf("netns dataplane: an id is required")
	}
	return &Dataplane{opts: o, names: topo.Names{ID: o.ID}, imds: newIMDSServers(o.Region, o.IMDS, o.Log),
		dns: newVPCResolvers(o.Region)}, nil
}

// Names returns the naming scheme of this data path's kernel objects.
func (d *Dataplane) Names() topo.Names { return d.names }

// Apply converges the kernel on snap. It is idempotent and works from any
// starting point (a fresh machine, a restart, a half-finished earlier
// Apply): everything it owns but the state no longer wants is removed.
func (d *Dataplane) Apply(ctx context.Context, snap *state.Snapshot) error {
	des := topo.Build(d.names, snap)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.converge(ctx, des)
}

// converge is Apply for an already-built topology (benchmarks, tools).
// The per-instance listeners follow the instances even when converging
// fails (or the caller gives up: an instance terminating itself through
// the API endpoint is killed, which cancels its request): a gone
// instance's listeners must not outlive it, holding its namespace, until
// the next Apply.
func (d *Dataplane) converge(ctx context.Context, des *topo.Desired) error {
	err := d.build(ctx, des)
	return errors.Join(err, d.imds.sync(des), d.dns.sync(des))
}

func (d *Dataplane) build(ctx context.Context, des *topo.Desired) error {
	s := newSession()
	defer s.close()
	if err := d.prune(s, des); err != nil {
		return err
	}
	for _, vpc := range des.VPCs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := d.convergeVPC(s, vpc); err != nil {
			return fmt.Errorf("converging %s: %w", vpc.ID, err)
		}
	}
	for _, inst := range des.Instances {
		if err := d.instanceRouting(s, inst); err != nil {
			return fmt.Errorf("configuring %s: %w", inst.ID, err)
		}
	}
	return d.rootRoutes(s, des)
}

func (d *Dataplane) convergeVPC(s *session, vpc *topo.VPC) error {
	if err := d.ensureFabric(s, vpc); err != nil {
		return err
	}
	// Rules go in before any new port comes up, so a new ENI is never
	// reachable unfiltered; unknown ports are dropped.
	if err := d.applyFirewall(s, vpc); err != nil {
		return err
	}
	// Trunks before branches: a branch's VXLAN needs its trunk's underlay.
	for _, pass := range []bool{false, true} {
		for _, p := range vpc.Ports {
			if (p.Kind == topo.KindBranch) != pass {
				continue
			}
			if err := d.ensurePort(s, vpc, p); err != nil {
				return fmt.Errorf("wiring %s: %w", p.ENI.ID, err)
			}
		}
	}
	return d.pruneFabric(s, vpc)
}

func (d *Dataplane) applyFirewall(s *session, vpc *topo.VPC) error {
	fd, err := s.fd(vpc.Namespace)
	if err != nil {
		return err
	}
	c, err := firewall.Dial(fd)
	if err != nil {
		return err
	}
	return firewall.Apply(c, firewall.Render(vpc))
}

// Flows returns the security group counters of every VPC's fabric.
func (d *Dataplane) Flows(vpcIDs ...string) ([]firewall.Flow, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return Flows(d.names, vpcIDs...)
}

// Flows reads the counters of the named VPCs' fabrics (all of this
// server's fabrics when none are named); it needs no running server.
func Flows(names topo.Names, vpcIDs ...string) ([]firewall.Flow, error) {
	if len(vpcIDs) == 0 {
		all, err := namespace.List(names.Prefix() + "vpc-")
		if err != nil {
			return nil, err
		}
		for _, n := range all {
			vpcIDs = append(vpcIDs, n[len(names.Prefix()):])
		}
	}
	var out []firewall.Flow
	for _, id := range vpcIDs {
		f, err := namespace.Open(names.Fabric(id))
		if err != nil {
			return nil, err
		}
		c, err := firewall.Dial(int(f.Fd()))
		if err == nil {
			var fl []firewall.Flow
			fl, err = firewall.Flows(c)
			out = append(out, fl...)
		}
		_ = f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading flows of %s: %w", id, err)
		}
	}
	return out, nil
}

// SetAPIHandler serves h in every running instance at
// http://169.254.169.254:8450 (IMDSAddr, topo.APIPort), as an EC2 interface
// VPC endpoint serves the EC2 API inside a VPC: pass the server's whole
// handler (EC2 and RDS, with its authentication, throttling and metrics).
// It opens a listener in every instance namespace the last Apply built,
// and from then on every Apply opens one in each new instance namespace
// and closes those of instances that are gone, with the metadata
// listeners. The handler is set after New because the server's handler is
// built over the store, which needs the data path first. h may be
// replaced; nil closes the API listeners and returns once their requests
// in flight have finished (or been cut after a grace period). An error
// names the namespaces whose listener did not open; the next Apply retries
// them.
func (d *Dataplane) SetAPIHandler(h http.Handler) error {
	drained, err := d.imds.setAPI(h)
	drained.wait()
	return err
}

// SetInstanceCredentials sets what issues the credentials of an
// instance's instance profile role, which its metadata serves at
// iam/security-credentials/ (the local STS's; nil: none are served).
func (d *Dataplane) SetInstanceCredentials(src imds.CredentialSource) {
	if src == nil {
		d.imds.creds.Store(nil)
		return
	}
	d.imds.creds.Store(&src)
}

// Close stops the resolvers, the metadata and API listeners and waits for their requests
// in flight; kernel state stays, so a restarted server picks it up.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	drained := d.imds.closeAll()
	err := d.dns.closeAll()
	d.mu.Unlock()
	drained.wait()
	return err
}
