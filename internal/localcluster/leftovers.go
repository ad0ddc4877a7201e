package localcluster

import (
	"fmt"
	"io"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/podsg/podsg/internal/cluster"
	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
)

// leftovers is what of a local cluster is on the machine: after a Down that worked, nothing.
type leftovers struct {
	processes  []cluster.Process // whose command line names the state dir
	namespaces []string          // the local VPC's, podsg-<id>-…
	links      []string          // its root-namespace links, ps<id>…
	mounts     []string          // under the state dir
	errs       []error           // what could not be looked at
}

// vpcID is the local VPC's data path id, which starts the names of its kernel objects.
func (o *Options) vpcID() string { return topo.IDFromStateDir(o.path("vpc")) }

func (o *Options) leftovers() leftovers {
	var l leftovers
	names := topo.Names{ID: o.vpcID()}
	var err error
	if l.processes, err = cluster.ProcessesNaming(o.StateDir); err != nil {
		l.errs = append(l.errs, err)
	}
	if l.namespaces, err = namespace.List(names.Prefix()); err != nil {
		l.errs = append(l.errs, err)
	}
	if links, err := netlink.LinkList(); err != nil {
		l.errs = append(l.errs, fmt.Errorf("listing links: %w", err))
	} else {
		for _, link := range links {
			if n := link.Attrs().Name; strings.HasPrefix(n, names.RootLinkPrefix()) {
				l.links = append(l.links, n)
			}
		}
	}
	if l.mounts, err = cluster.MountsUnder(o.StateDir); err != nil {
		l.errs = append(l.errs, err)
	}
	return l
}

func (l leftovers) empty() bool {
	return len(l.processes)+len(l.namespaces)+len(l.links)+len(l.mounts)+len(l.errs) == 0
}

// summary counts what is left, e.g. "2 processes, 4 network namespaces".
func (l leftovers) summary() string {
	var parts []string
	count := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	count(len(l.processes), "process", "processes")
	count(len(l.namespaces), "network namespace", "network namespaces")
	count(len(l.links), "link", "links")
	count(len(l.mounts), "mount", "mounts")
	if len(l.errs) > 0 {
		parts = append(parts, "what could not be checked")
	}
	return strings.Join(parts, ", ")
}

// print lists what is left, one object a line, with what it takes to find it again.
func (l leftovers) print(out io.Writer, dir string) {
	_, _ = fmt.Fprintf(out, "left behind by the local cluster at %s:\n", dir)
	for _, p := range l.processes {
		_, _ = fmt.Fprintf(out, "  process %d: %s\n", p.PID, p.Command())
	}
	for _, n := range l.namespaces {
		_, _ = fmt.Fprintf(out, "  network namespace %s\n", n)
	}
	for _, n := range l.links {
		_, _ = fmt.Fprintf(out, "  link %s\n", n)
	}
	for _, m := range l.mounts {
		_, _ = fmt.Fprintf(out, "  mount %s\n", m)
	}
	for _, err := range l.errs {
		_, _ = fmt.Fprintf(out, "  could not check: %v\n", err)
	}
}
