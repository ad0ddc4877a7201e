package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"
)

// Ports are the control plane's listening ports; zero fields get the standard ones. etcd,
// the scheduler and the controller manager always listen on loopback only.
type Ports struct {
	Etcd, EtcdPeer, APIServer, Scheduler, ControllerManager int
}

func (p Ports) withDefaults() Ports {
	def := func(v, d int) int {
		if v == 0 {
			return d
		}
		return v
	}
	return Ports{
		Etcd: def(p.Etcd, 2379), EtcdPeer: def(p.EtcdPeer, 2380), APIServer: def(p.APIServer, 6443),
		Scheduler: def(p.Scheduler, 10259), ControllerManager: def(p.ControllerManager, 10257),
	}
}

// Options configure a control plane.
type Options struct {
	// StateDir holds certificates, kubeconfigs, etcd's data, pid files and logs.
	StateDir string
	// BinDir holds etcd, kube-apiserver, kube-scheduler and kube-controller-manager
	// (hack/kube-bin.sh prints it).
	BinDir string
	// APIServerAddress is where kube-apiserver listens and what it advertises. Nodes must reach
	// it from their namespaces, so for a cluster with nodes it is the local VPC's gateway
	// address in the root namespace, not loopback. Default 127.0.0.1 (a plane without nodes).
	APIServerAddress string
	Ports            Ports
	// ServiceCIDR is the ClusterIP range; default 10.100.0.0/16 like EKS.
	ServiceCIDR string
	// KillWithParent ties the processes' lives to the caller's (tests).
	KillWithParent bool
}

// ControlPlane is etcd, kube-apiserver, kube-scheduler and kube-controller-manager.
type ControlPlane struct {
	opts Options
	pki  pki
}

// NewControlPlane fills in defaults; it starts nothing.
func NewControlPlane(opts Options) (*ControlPlane, error) {
	// BinDir is needed to start the plane, not to stop it: its processes are known by name.
	if opts.StateDir == "" {
		return nil, errors.New("control plane: StateDir is required")
	}
	if opts.APIServerAddress == "" {
		opts.APIServerAddress = "127.0.0.1"
	}
	if net.ParseIP(opts.APIServerAddress) == nil {
		return nil, fmt.Errorf("control plane: APIServerAddress %q is not an IP", opts.APIServerAddress)
	}
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = "10.100.0.0/16"
	}
	opts.Ports = opts.Ports.withDefaults()
	return &ControlPlane{opts: opts, pki: pki{dir: filepath.Join(opts.StateDir, "pki")}}, nil
}

// URL is the API server's address, as nodes and kubectl use it.
func (c *ControlPlane) URL() string {
	return "https://" + net.JoinHostPort(c.opts.APIServerAddress, strconv.Itoa(c.opts.Ports.APIServer))
}

// AdminKubeconfig authenticates as system:masters.
func (c *ControlPlane) AdminKubeconfig() string {
	return filepath.Join(c.opts.StateDir, "admin.kubeconfig")
}

// CAFile is the cluster CA: it signed every certificate in the cluster.
func (c *ControlPlane) CAFile() string { return c.pki.caFile() }

// Up starts whatever part of the control plane is not running and waits until each part is
// healthy. On a running control plane it changes nothing.
func (c *ControlPlane) Up(ctx context.Context) error {
	if c.opts.BinDir == "" {
		return errors.New("control plane: BinDir is required to start it")
	}
	if err := c.ensureCredentials(); err != nil {
		return err
	}
	steps := []struct {
		d     daemon
		ready func(context.Context) error
	}{
		{c.etcd(), c.etcdReady},
		{c.apiserver(), c.apiserverReady},
		{c.scheduler(), func(ctx context.Context) error { return c.componentHealthy(ctx, c.opts.Ports.Scheduler) }},
		{c.controllerManager(), func(ctx context.Context) error { return c.componentHealthy(ctx, c.opts.Ports.ControllerManager) }},
	}
	for _, s := range steps {
		if _, err := s.d.start(ctx); err != nil {
			return err
		}
		if err := waitReady(ctx, s.d, s.ready); err != nil {
			return err
		}
	}
	return nil
}

// Down stops the control plane in reverse order. The state directory stays, so a later Up
// brings back the same cluster (same CA, same etcd contents).
func (c *ControlPlane) Down(ctx context.Context) error {
	var errs []error
	for _, d := range []daemon{c.controllerManager(), c.scheduler(), c.apiserver(), c.etcd()} {
		errs = append(errs, d.stop(ctx, 10*time.Second))
	}
	return errors.Join(errs...)
}

// Daemons are the plane's processes, for status reports.
func (c *ControlPlane) Daemons() []Daemon {
	return []Daemon{{c.etcd()}, {c.apiserver()}, {c.scheduler()}, {c.controllerManager()}}
}

// waitReady polls ready until it succeeds, failing early with the log tail if the process dies.
func waitReady(ctx context.Context, d daemon, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		if _, ok := d.running(); !ok {
			return fmt.Errorf("%s exited while starting:\n%s", d.name, d.logTail())
		}
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last check: %w)\n%s", d.name, ctx.Err(), last, d.logTail())
		case <-tick.C:
		}
	}
}
