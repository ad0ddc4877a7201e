// Package netnsdp is the "netns" data path of the local VPC: it makes what
// the EC2 API says exists exist in the kernel, and enforces security
// groups on every packet. A VPC is a fabric namespace routing between its
// ENIs; an instance is a namespace holding its ENIs as eth<N>, each a veth
// into the fabric; branch ENIs are VXLAN sub-interfaces of their trunk;
// nftables in the fabric enforce security groups statefully. See
// docs/local-vpc.md.
package netnsdp

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/vpc/dataplane/firewall"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/state"
)

// Options configure the data path.
type Options struct {
	// ID distinguishes this server's kernel objects from another's; use
	// topo.IDFromStateDir. Required.
	ID string
	// Region is what instance metadata reports.
	Region string
	// IMDS serves instance metadata in every instance namespace.
	IMDS bool
	Log  logr.Logger
}

// Dataplane implements state.Applier on network namespaces.
type Dataplane struct {
	opts  Options
	names topo.Names
	imds  *imdsServers
	// mu serialises Apply (the store already does) against Flows/Close.
	mu sync.Mutex
}

var _ state.Applier = (*Dataplane)(nil)

// New returns the data path; kernel state is converged by the first Apply.
func New(o Options) (*Dataplane, error) {
	if o.ID == "" {
		return nil, fmt.Errorf("netns dataplane: an id is required")
	}
	d := &Dataplane{opts: o, names: topo.Names{ID: o.ID}}
	if o.IMDS {
		d.imds = newIMDSServers(o.Region, o.Log)
	}
	return d, nil
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

// Desired is Apply for an already-built topology (benchmarks, tools).
func (d *Dataplane) converge(ctx context.Context, des *topo.Desired) error {
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
	if err := d.rootRoutes(s, des); err != nil {
		return err
	}
	if d.imds != nil {
		return d.imds.sync(des)
	}
	return nil
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

// Close stops the metadata servers; kernel state stays, so a restarted
// server picks it up.
func (d *Dataplane) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.imds != nil {
		d.imds.closeAll()
	}
	return nil
}
