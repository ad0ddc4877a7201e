package netnsdp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/imds"
	"github.com/podsg/podsg/internal/vpc/state"
)

// imdsServers runs one metadata listener per instance namespace, all in
// this process: the listener is opened from inside the namespace, so the
// socket lives there, and the listener identifies the instance.
type imdsServers struct {
	region  string
	log     logr.Logger
	mu      sync.Mutex
	servers map[string]*imdsServer
}

type imdsServer struct {
	ns   string
	inst atomic.Pointer[imds.Instance]
	srv  *http.Server
}

func newIMDSServers(region string, log logr.Logger) *imdsServers {
	return &imdsServers{region: region, log: log, servers: map[string]*imdsServer{}}
}

// sync starts listeners for new instances, refreshes every instance's
// metadata and stops those of instances that are gone.
func (m *imdsServers) sync(des *topo.Desired) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cidrs := map[string]string{}
	for _, v := range des.VPCs {
		cidrs[v.ID] = v.CIDR.String()
	}
	live := map[string]bool{}
	for _, inst := range des.Instances {
		live[inst.ID] = true
		s := m.servers[inst.ID]
		if s == nil || s.ns != inst.Namespace {
			var err error
			if s, err = m.start(inst.Namespace); err != nil {
				return fmt.Errorf("starting metadata service of %s: %w", inst.ID, err)
			}
			m.servers[inst.ID] = s
		}
		s.inst.Store(metadata(inst, m.region, cidrs))
	}
	for id, s := range m.servers {
		if !live[id] {
			m.stop(s)
			delete(m.servers, id)
		}
	}
	return nil
}

func (m *imdsServers) start(ns string) (*imdsServer, error) {
	var ln net.Listener
	err := namespace.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(IMDSAddr.String(), "80"))
		return err
	})
	if err != nil {
		return nil, err
	}
	s := &imdsServer{ns: ns}
	s.srv = &http.Server{Handler: imds.NewHandler(s.inst.Load), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error(err, "metadata service stopped", "netns", ns)
		}
	}()
	return s, nil
}

func (m *imdsServers) stop(s *imdsServer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

func (m *imdsServers) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.servers {
		m.stop(s)
		delete(m.servers, id)
	}
}

func metadata(inst *topo.Instance, region string, cidrs map[string]string) *imds.Instance {
	st := inst.State
	md := &imds.Instance{ID: st.ID, Type: st.Type, ImageID: st.ImageID, AvailabilityZone: st.AvailabilityZone,
		Region: region, AccountID: state.AccountID}
	for _, p := range inst.Ports {
		ni := imds.Interface{MAC: p.MAC.String(), ID: p.ENI.ID, SubnetID: p.ENI.SubnetID, SubnetCIDR: p.Subnet.String(),
			VPCID: p.ENI.VPCID, DeviceNumber: p.DeviceIndex, SecurityGroupIDs: p.ENI.Groups}
		if c := cidrs[p.VPC]; c != "" {
			ni.VPCCIDRs = []string{c}
		}
		for _, a := range p.IPs {
			ni.IPv4s = append(ni.IPv4s, a.String())
		}
		md.Interfaces = append(md.Interfaces, ni)
	}
	return md
}
