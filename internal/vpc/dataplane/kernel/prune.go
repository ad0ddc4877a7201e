package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// prune removes the namespaces and root links this server owns that the
// desired state no longer has; it also creates the guest namespaces, which
// must exist before ports are wired into them.
func (d *Dataplane) prune(s *session, des *topo.Desired) error {
	want := map[string]bool{}
	rootLinks := map[string]bool{}
	for _, vpc := range des.VPCs {
		want[vpc.Namespace] = true
		for _, p := range vpc.Ports {
			switch p.Kind {
			case topo.KindTrunk:
				want[p.TrunkNS] = true
			case topo.KindRDS:
				want[p.Namespace] = true
			case topo.KindHost:
				rootLinks[p.IfName] = true
			}
		}
	}
	for _, inst := range des.Instances {
		want[inst.Namespace] = true
	}
	have, err := namespace.List(d.names.Prefix())
	if err != nil {
		return err
	}
	for _, n := range have {
		if !want[n] {
			s.forget(n)
			if err := removeNamespace(n); err != nil {
				return err
			}
		}
	}
	if err := removeRootLinks(d.names, rootLinks); err != nil {
		return err
	}
	return d.ensureInstances(s, des)
}

// ensureInstances creates the namespace of every running instance, with
// the table that makes it count hops for metadata replies and the
// resolv.conf naming its VPC's resolver.
func (d *Dataplane) ensureInstances(s *session, des *topo.Desired) error {
	for _, inst := range des.Instances {
		if err := d.ensureGuestNS(s, inst.Namespace); err != nil {
			return fmt.Errorf("creating namespace of %s: %w", inst.ID, err)
		}
		if d.opts.IMDS {
			if err := d.ensureIMDSHop(s, inst.Namespace); err != nil {
				return err
			}
		}
		for _, vpc := range des.VPCs {
			if vpc.ID == inst.State.VPCID {
				if err := writeResolvConf(inst.Namespace, vpc, d.opts.Region); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeNamespace stops the processes in it, deletes its links (which
// removes their veth peers at once rather than when the kernel gets round
// to destroying the namespace) and unmounts it.
func removeNamespace(name string) error {
	if err := namespace.Kill(name, 2*time.Second); err != nil {
		return err
	}
	if h, err := namespace.Handle(name); err == nil {
		links, _ := h.LinkList()
		for _, l := range links {
			if l.Attrs().Name != "lo" {
				_ = h.LinkDel(l)
			}
		}
		h.Close()
	}
	if err := namespace.Delete(name); err != nil {
		return err
	}
	if err := os.RemoveAll(namespace.ConfigDir(name)); err != nil {
		return fmt.Errorf("removing the configuration of netns %s: %w", name, err)
	}
	return nil
}

func removeRootLinks(names topo.Names, keep map[string]bool) error {
	links, err := netlink.LinkList()
	if err != nil {
		return fmt.Errorf("listing root links: %w", err)
	}
	for _, l := range links {
		if n := l.Attrs().Name; strings.HasPrefix(n, names.RootLinkPrefix()) && !keep[n] {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				return fmt.Errorf("deleting root link %s: %w", n, err)
			}
		}
	}
	return nil
}

// rootRoutes routes every VPC CIDR from the root namespace: through the
// VPC's host ENI when it has one, else to an unreachable route, so that
// VPC-addressed traffic never leaves through the default route.
func (d *Dataplane) rootRoutes(s *session, des *topo.Desired) error {
	h, err := s.h("")
	if err != nil {
		return err
	}
	metric := d.names.RouteMetric()
	want := map[netip.Prefix]*netlink.Route{}
	for _, vpc := range des.VPCs {
		r, err := rootRoute(h, vpc, metric)
		if err != nil {
			return err
		}
		if foreign, err := overlapsForeign(h, vpc.CIDR); err != nil {
			return err
		} else if foreign != "" {
			d.opts.Log.Info("not routing VPC CIDR from the host: it overlaps a host route", "vpc", vpc.ID, "cidr", vpc.CIDR.String(), "route", foreign)
			continue
		}
		want[vpc.CIDR] = r
	}
	return syncRootRoutes(h, want, metric)
}

// rootRoute is the root namespace's route to a VPC's CIDR: through its host ENI, or unreachable.
func rootRoute(h *netlink.Handle, vpc *topo.VPC, metric int) (*netlink.Route, error) {
	r := &netlink.Route{Dst: ipNet(vpc.CIDR), Protocol: topo.RouteProtocol, Priority: metric, Type: unix.RTN_UNREACHABLE}
	for _, p := range vpc.Ports {
		if p.Kind != topo.KindHost || len(p.IPs) == 0 {
			continue
		}
		l, err := linkByName(h, p.IfName)
		if err != nil || l == nil {
			return nil, fmt.Errorf("finding host link %s: %w", p.IfName, err)
		}
		r = &netlink.Route{Dst: ipNet(vpc.CIDR), LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
			Src: ipNet(host(p.IPs[0])).IP, Protocol: topo.RouteProtocol, Priority: metric}
	}
	return r, nil
}

// syncRootRoutes makes our root routes at metric exactly want: it deletes the others and
// those whose type or link changed, then (re)places every wanted one.
func syncRootRoutes(h *netlink.Handle, want map[netip.Prefix]*netlink.Route, metric int) error {
	have, err := h.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: topo.RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return fmt.Errorf("listing root routes: %w", err)
	}
	for _, r := range have {
		if r.Priority != metric || r.Dst == nil {
			continue
		}
		if w := want[toPrefix(r.Dst)]; w != nil && w.Type == r.Type && w.LinkIndex == r.LinkIndex {
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("deleting root route %s: %w", r.Dst, err)
		}
	}
	for _, r := range want {
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("adding root route %s: %w", r.Dst, err)
		}
	}
	return nil
}

// overlapsForeign returns a root route (not a local VPC's, not the default
// route) that overlaps cidr: routing the CIDR then would hijack or be
// hijacked by a real network.
func overlapsForeign(h *netlink.Handle, cidr netip.Prefix) (string, error) {
	rs, err := h.RouteList(nil, unix.AF_INET)
	if err != nil {
		return "", fmt.Errorf("listing root routes: %w", err)
	}
	for _, r := range rs {
		if r.Dst == nil || r.Protocol == topo.RouteProtocol {
			continue
		}
		if p := toPrefix(r.Dst); p.Bits() > 0 && p.Overlaps(cidr) {
			return p.String(), nil
		}
	}
	return "", nil
}

// Cleanup removes every namespace, root link and root route of the server
// with the given id (topo.IDFromStateDir(stateDir)), and stops the
// processes in those namespaces. It needs no state and no running server.
func Cleanup(id string) error {
	names := topo.Names{ID: id}
	have, err := namespace.List(names.Prefix())
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range have {
		errs = append(errs, removeNamespace(n))
	}
	errs = append(errs, removeRootLinks(names, nil))
	rs, err := netlink.RouteListFiltered(unix.AF_INET, &netlink.Route{Protocol: topo.RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
	errs = append(errs, err)
	for _, r := range rs {
		if r.Priority == names.RouteMetric() {
			if err := netlink.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("deleting root route %s: %w", r.Dst, err))
			}
		}
	}
	return errors.Join(errs...)
}
