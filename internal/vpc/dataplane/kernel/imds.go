package kernel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/podsg/podsg/internal/vpc/dataplane/namespace"
	"github.com/podsg/podsg/internal/vpc/dataplane/topo"
	"github.com/podsg/podsg/internal/vpc/imds"
	"github.com/podsg/podsg/internal/vpc/resolver"
	"github.com/podsg/podsg/internal/vpc/state"
)

// How long a closed listener's open connections may finish their requests
// before they are cut: metadata answers at once, an API call may wait for
// an Apply or a profile's latency.
const (
	imdsDrain = time.Second
	apiDrain  = 10 * time.Second
)

// imdsServers runs the per-instance listeners on IMDSAddr, all in this
// process: instance metadata on port 80 and, once a handler is set, the
// API endpoint on topo.APIPort. Each listener is opened from inside the
// instance namespace, so the socket lives there, and the metadata listener
// identifies the instance. Listeners close when the instance goes (or its
// namespace is replaced), synchronously, before the Apply that removed it
// returns; their open connections drain in the background.
type imdsServers struct {
	region string
	imds   bool // serve metadata on port 80
	log    logr.Logger
	// api is the handler every API listener serves (nil: no API endpoint).
	api atomic.Pointer[apiHandler]
	// creds issues instance profile credentials for iam/ metadata (nil: none).
	creds atomic.Pointer[imds.CredentialSource]

	mu      sync.Mutex
	servers map[string]*imdsServer
	// fabrics serve the API at each VPC's interface endpoint address in its fabric namespace,
	// by VPC id: a pod on a branch ENI sends everything into the fabric, so 169.254.169.254
	// of its node is out of its reach, and this address is not. They also serve instance
	// metadata at IMDSAddr:80 there, to that same pod, as its trunk's instance (byBranch).
	fabrics map[string]*imdsServer
	// byBranch maps a branch ENI's addresses to the metadata handler of its trunk's instance,
	// replaced whole by each sync and read without m.mu by the fabrics' metadata listeners.
	byBranch atomic.Pointer[map[netip.Addr]*imds.Handler]
}

type apiHandler struct{ http.Handler }

// imdsServer holds one instance's listeners.
type imdsServer struct {
	// endpoint is set on a VPC's fabric: the API on this address and topo.EndpointPort, and
	// the branch ENIs' metadata on IMDSAddr:80.
	endpoint netip.Addr
	ns       string
	nsID     nsID
	inst     atomic.Pointer[imds.Instance]
	// handler serves an instance's metadata on its own listener and, through the fabric, to
	// the pods on its branch ENIs: one token store, as EC2's tokens are the instance's.
	handler *imds.Handler
	md      *listener // metadata; nil when off
	api     *listener // API endpoint; nil without a handler
}

type listener struct {
	ln    net.Listener
	srv   *http.Server
	drain time.Duration
}

// nsID identifies a namespace (its nsfs inode): a namespace deleted and
// created again under the same name is a different one, whose listeners
// must be opened again.
type nsID struct{ dev, ino uint64 }

func namespaceID(name string) (nsID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(namespace.Path(name), &st); err != nil {
		return nsID{}, fmt.Errorf("stat netns %s: %w", name, err)
	}
	return nsID{dev: st.Dev, ino: st.Ino}, nil
}

func newIMDSServers(region string, serveIMDS bool, log logr.Logger) *imdsServers {
	return &imdsServers{region: region, imds: serveIMDS, log: log, servers: map[string]*imdsServer{}, fabrics: map[string]*imdsServer{}}
}

// sync opens the listeners of new instances, refreshes every instance's
// metadata and closes those of instances that are gone. A listener that
// fails to open is reported and retried by the next sync.
func (m *imdsServers) sync(des *topo.Desired) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cidrs := map[string]string{}
	for _, v := range des.VPCs {
		cidrs[v.ID] = v.CIDR.String()
	}
	live := map[string]bool{}
	var errs []error
	for _, inst := range des.Instances {
		live[inst.ID] = true
		s := m.servers[inst.ID]
		id, err := namespaceID(inst.Namespace)
		if err != nil { // not (yet) created: the next sync opens its listeners
			if s != nil {
				m.stop(s)
				delete(m.servers, inst.ID)
			}
			errs = append(errs, err)
			continue
		}
		if s != nil && (s.ns != inst.Namespace || s.nsID != id) {
			m.stop(s)
			s = nil
		}
		if s == nil {
			s = &imdsServer{ns: inst.Namespace, nsID: id}
			s.handler = imds.NewHandler(s.inst.Load, m.instanceCredentials)
			m.servers[inst.ID] = s
		}
		if m.imds {
			s.inst.Store(metadata(inst, m.region, cidrs))
		}
		if err := m.open(s); err != nil {
			errs = append(errs, fmt.Errorf("serving in the namespace of %s: %w", inst.ID, err))
		}
	}
	for id, s := range m.servers {
		if !live[id] {
			m.stop(s)
			delete(m.servers, id)
		}
	}
	m.byBranch.Store(m.branchHandlers(des))
	return errors.Join(append(errs, m.syncFabrics(des))...)
}

// branchHandlers maps the addresses of every branch ENI to the metadata handler of the
// instance its trunk is attached to. The caller holds m.mu.
//
// On EC2, 169.254.169.254 answers on every ENI of an instance, branch ENIs through the trunk
// included, as that instance. Here a pod on a branch ENI reaches it in the fabric, which knows
// the request's source address only: it is a branch's, since the fabric's source check keeps
// every ENI to its own addresses, and a forged one gets no TCP handshake anyway (the reply goes
// to the address's owner). Instances' own ENIs are not listed: their 169.254.169.254 is local.
func (m *imdsServers) branchHandlers(des *topo.Desired) *map[netip.Addr]*imds.Handler {
	owner := map[*topo.Port]*imdsServer{}
	for _, inst := range des.Instances {
		if s := m.servers[inst.ID]; s != nil {
			for _, p := range inst.Ports {
				owner[p] = s
			}
		}
	}
	out := map[netip.Addr]*imds.Handler{}
	for _, vpc := range des.VPCs {
		for _, p := range vpc.Ports {
			if s := owner[p.Trunk]; p.Kind == topo.KindBranch && s != nil {
				for _, a := range p.IPs {
					out[a] = s.handler
				}
			}
		}
	}
	return &out
}

// serveBranchMetadata answers a metadata request that reached a fabric: from a pod on a branch
// ENI, as the metadata of the branch's trunk's instance. Anything else gets no metadata.
func (m *imdsServers) serveBranchMetadata(w http.ResponseWriter, r *http.Request) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var h *imds.Handler
	if byBranch := m.byBranch.Load(); err == nil && byBranch != nil {
		h = (*byBranch)[ap.Addr().Unmap()]
	}
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// syncFabrics opens the interface endpoint in every VPC's fabric namespace (or again in a
// fabric created anew) and closes those of VPCs that are gone. The caller holds m.mu.
func (m *imdsServers) syncFabrics(des *topo.Desired) error {
	live := map[string]bool{}
	var errs []error
	for _, vpc := range des.VPCs {
		live[vpc.ID] = true
		addr := resolver.EndpointAddress(vpc.CIDR)
		s := m.fabrics[vpc.ID]
		id, err := namespaceID(vpc.Namespace)
		if err != nil {
			if s != nil {
				m.stop(s)
				delete(m.fabrics, vpc.ID)
			}
			errs = append(errs, err)
			continue
		}
		if s != nil && (s.ns != vpc.Namespace || s.nsID != id || s.endpoint != addr) {
			m.stop(s)
			s = nil
		}
		if s == nil {
			s = &imdsServer{endpoint: addr, ns: vpc.Namespace, nsID: id}
			m.fabrics[vpc.ID] = s
		}
		if err := m.open(s); err != nil {
			errs = append(errs, fmt.Errorf("serving the interface endpoint of %s: %w", vpc.ID, err))
		}
	}
	for id, s := range m.fabrics {
		if !live[id] {
			m.stop(s)
			delete(m.fabrics, id)
		}
	}
	return errors.Join(errs...)
}

// open opens whichever of s's listeners should be and are not.
func (m *imdsServers) open(s *imdsServer) error {
	var errs []error
	if s.endpoint.IsValid() {
		if m.imds && s.md == nil {
			l, err := m.listen(s.ns, IMDSAddr, 80, http.HandlerFunc(m.serveBranchMetadata), imdsDrain)
			if err != nil {
				errs = append(errs, fmt.Errorf("metadata service for branch ENIs: %w", err))
			}
			s.md = l
		}
		if m.api.Load() != nil && s.api == nil {
			l, err := m.listen(s.ns, s.endpoint, topo.EndpointPort, http.HandlerFunc(m.serveAPI), apiDrain)
			if err != nil {
				errs = append(errs, fmt.Errorf("API endpoint: %w", err))
			}
			s.api = l
		}
		return errors.Join(errs...)
	}
	if m.imds && s.md == nil {
		l, err := m.listen(s.ns, IMDSAddr, 80, s.handler, imdsDrain)
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata service: %w", err))
		}
		s.md = l
	}
	if m.api.Load() != nil && s.api == nil {
		l, err := m.listen(s.ns, IMDSAddr, topo.APIPort, http.HandlerFunc(m.serveAPI), apiDrain)
		if err != nil {
			errs = append(errs, fmt.Errorf("API endpoint: %w", err))
		}
		s.api = l
	}
	return errors.Join(errs...)
}

// serveAPI forwards to the current API handler.
func (m *imdsServers) serveAPI(w http.ResponseWriter, r *http.Request) {
	if h := m.api.Load(); h != nil {
		h.ServeHTTP(w, r)
		return
	}
	http.Error(w, "the API endpoint is closing", http.StatusServiceUnavailable)
}

// setAPI sets the API handler and opens (h != nil) or closes (nil) the API
// listener of every known instance; the closed listeners' connections have
// finished when drained is.
func (m *imdsServers) setAPI(h http.Handler) (drained draining, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h == nil {
		m.api.Store(nil)
	} else {
		m.api.Store(&apiHandler{h})
	}
	var errs []error
	for _, all := range []map[string]*imdsServer{m.servers, m.fabrics} {
		for id, s := range all {
			if h == nil {
				drained = append(drained, m.close(s.api))
				s.api = nil
			} else if err := m.open(s); err != nil {
				errs = append(errs, fmt.Errorf("serving in the namespace of %s: %w", id, err))
			}
		}
	}
	return drained, errors.Join(errs...)
}

func (m *imdsServers) listen(ns string, addr netip.Addr, port int, h http.Handler, drain time.Duration) (*listener, error) {
	var ln net.Listener
	err := namespace.Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
		return err
	})
	if err != nil {
		return nil, err
	}
	// imds.ConnContext hands the metadata handler each request's
	// connection, whose IP TTL it sets to the hop limit; the API handler
	// ignores it.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ConnContext: imds.ConnContext}
	l := &listener{ln: ln, srv: srv, drain: drain}
	go func() {
		if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			m.log.Error(err, "instance listener stopped", "netns", ns, "port", port)
		}
	}()
	return l, nil
}

func (m *imdsServers) stop(s *imdsServer) draining {
	d := draining{m.close(s.md), m.close(s.api)}
	s.md, s.api = nil, nil
	return d
}

// close closes l's listener now and lets its connections finish their
// requests in the background (the returned channel closes when they have):
// the caller may hold the data path's lock, which a request in flight (an
// API call waiting for its Apply) needs.
func (m *imdsServers) close(l *listener) <-chan struct{} {
	if l == nil {
		return nil
	}
	_ = l.ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), l.drain)
		defer cancel()
		if err := l.srv.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			_ = l.srv.Close()
		}
	}()
	return done
}

// closeAll closes every listener.
func (m *imdsServers) closeAll() (drained draining) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, all := range []map[string]*imdsServer{m.servers, m.fabrics} {
		for id, s := range all {
			drained = append(drained, m.stop(s)...)
			delete(all, id)
		}
	}
	return drained
}

// draining are the closed listeners whose connections are finishing.
type draining []<-chan struct{}

// wait waits for them; call it without holding the data path's lock.
func (d draining) wait() {
	for _, c := range d {
		if c != nil {
			<-c
		}
	}
}

// instanceCredentials is every metadata handler's credential source: it
// asks the one set by SetInstanceCredentials at the time of the request,
// since listeners open (at the first Apply) before it is set.
func (m *imdsServers) instanceCredentials(profileARN, instanceID string) (string, imds.Credentials, bool) {
	src := m.creds.Load()
	if src == nil {
		return "", imds.Credentials{}, false
	}
	return (*src)(profileARN, instanceID)
}

func metadata(inst *topo.Instance, region string, cidrs map[string]string) *imds.Instance {
	st := inst.State
	mo := st.MetadataOptions
	md := &imds.Instance{ID: st.ID, Type: st.Type, ImageID: st.ImageID, AvailabilityZone: st.AvailabilityZone,
		Region: region, AccountID: state.AccountID, Options: imds.Options{
			Disabled:            mo.Endpoint() == state.EndpointDisabled,
			TokensRequired:      mo.Tokens() == state.HTTPTokensRequired,
			PutResponseHopLimit: mo.PutResponseHopLimit(),
		}}
	if p := st.IAMProfile; p != nil {
		md.IAM = &imds.IAM{ProfileARN: p.ProfileARN, ProfileID: p.ProfileID}
	}
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
