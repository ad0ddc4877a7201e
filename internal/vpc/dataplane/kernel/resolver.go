package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/resolver"
	"github.com/podsg/podsg/internal/vpc/state"
)

// vpcResolvers runs each VPC's DNS resolver (AmazonProvidedDNS) in this process, listening on
// the resolver's address (base + 2) inside the VPC's fabric namespace, where it is a local
// address on lo like the subnet gateways. Every ENI reaches it through the fabric as it reaches
// its gateway; the packets are delivered locally there, not forwarded, so security groups
// (which the fabric enforces on forwarded packets) do not filter them: on AWS, security groups
// do not filter traffic to the Amazon-provided DNS server either.
type vpcResolvers struct {
	region  string
	mu      sync.Mutex
	servers map[string]*vpcResolver // by VPC id
}

type vpcResolver struct {
	ns      string
	nsID    nsID
	addr    netip.Addr
	handler *resolver.Handler
	srv     *resolver.Server // nil until its sockets opened
}

func newVPCResolvers(region string) *vpcResolvers {
	return &vpcResolvers{region: region, servers: map[string]*vpcResolver{}}
}

// sync refreshes every VPC's records, opens the resolvers of new fabrics (or of fabrics
// created again) and stops those of VPCs that are gone. A resolver that fails to open is
// reported and retried by the next sync.
func (r *vpcResolvers) sync(des *topo.Desired) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := map[string]bool{}
	var errs []error
	for _, vpc := range des.VPCs {
		live[vpc.ID] = true
		addr := resolver.Address(vpc.CIDR)
		s := r.servers[vpc.ID]
		id, err := namespaceID(vpc.Namespace)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if s != nil && (s.ns != vpc.Namespace || s.nsID != id || s.addr != addr) {
			errs = append(errs, s.stop())
			s = nil
		}
		if s == nil {
			s = &vpcResolver{ns: vpc.Namespace, nsID: id, addr: addr, handler: &resolver.Handler{}}
			r.servers[vpc.ID] = s
		}
		s.handler.Set(resolver.RecordsOf(vpc, r.region))
		if s.srv == nil {
			if err := s.open(); err != nil {
				errs = append(errs, fmt.Errorf("serving the resolver of %s: %w", vpc.ID, err))
			}
		}
	}
	for id, s := range r.servers {
		if !live[id] {
			errs = append(errs, s.stop())
			delete(r.servers, id)
		}
	}
	return errors.Join(errs...)
}

// open binds UDP and TCP port 53 on the resolver's address from inside the fabric namespace,
// so that the sockets live there.
func (s *vpcResolver) open() error {
	var pc net.PacketConn
	var ln net.Listener
	hostPort := net.JoinHostPort(s.addr.String(), "53")
	err := namespace.Do(s.ns, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", hostPort); err != nil {
			return err
		}
		if ln, err = net.Listen("tcp4", hostPort); err != nil {
			_ = pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.srv = resolver.Serve(s.handler, pc, ln)
	return nil
}

func (s *vpcResolver) stop() error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	return err
}

// closeAll stops every resolver.
func (r *vpcResolvers) closeAll() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for id, s := range r.servers {
		errs = append(errs, s.stop())
		delete(r.servers, id)
	}
	return errors.Join(errs...)
}

// resolvConf is what an instance's DHCP options set gives it on AWS: the VPC's resolver, and
// its region's private domain to search. `ip netns exec` puts it in place of /etc/resolv.conf.
func resolvConf(vpc *topo.VPC, region string) string {
	return "# written by podsg-vpc: the VPC's DHCP options (AmazonProvidedDNS)\nsearch " +
		state.PrivateDNSDomain(region) + "\nnameserver " + resolver.Address(vpc.CIDR).String() + "\n"
}

// writeResolvConf gives an instance namespace its resolv.conf.
func writeResolvConf(ns string, vpc *topo.VPC, region string) error {
	dir := namespace.ConfigDir(ns)
	if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // /etc/netns/NAME is readable like /etc
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	want := resolvConf(vpc, region)
	path := filepath.Join(dir, "resolv.conf")
	if have, err := os.ReadFile(path); err == nil && string(have) == want {
		return nil
	}
	if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
