package podnet

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/podstate"
)

// Del removes everything Add builds for rec. It is idempotent and needs nothing but the record:
// no agent, no API server, not even the pod's namespace (which may already be gone).
func Del(netnsPath string, rec *podstate.Record) error {
	var errs []error
	if netnsPath != "" {
		// Deleting the pod side first also removes the host side, veth ends die together.
		if err := ns.WithNetNSPath(netnsPath, func(ns.NetNS) error { return deleteLinkByName(rec.IfName) }); err != nil && !isNSGone(err) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, deleteLinkByName(rec.HostVeth))
	if rec.Kind == podstate.KindRegular {
		for _, r := range rules(rec) {
			errs = append(errs, deleteRule(r))
		}
	}
	if rec.Kind == podstate.KindBranch {
		errs = append(errs, deleteLinkByName(rec.SubInterface)) // its routes in the pod table go with it
		for _, r := range rules(rec) {
			errs = append(errs, deleteRule(r))
		}
		// The other mode's rules too: a pod record written before a mode change must still clean up.
		other := *rec
		other.Mode = map[string]string{podstate.ModeStrict: podstate.ModeStandard, podstate.ModeStandard: podstate.ModeStrict}[rec.Mode]
		for _, r := range rules(&other) {
			errs = append(errs, deleteRule(r))
		}
	}
	return errors.Join(errs...)
}

func deleteLinkByName(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return fmt.Errorf("finding link %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("deleting link %s: %w", name, err)
	}
	return nil
}

// deleteRule removes every copy of r (an interrupted ADD retried may have added it twice).
func deleteRule(r *netlink.Rule) error {
	for {
		err := netlink.RuleDel(r)
		if errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("deleting rule %s: %w", r, err)
		}
	}
}

func isNSGone(err error) bool {
	var notExist ns.NSPathNotExistErr
	var notNS ns.NSPathNotNSErr
	return errors.As(err, &notExist) || errors.As(err, &notNS)
}
